"""A real redis-server for tests: on a free loopback port, without persistence."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_port


@dataclass
class RedisServer:
    url: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@contextmanager
def running_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server in `tmp_path`, stopped when the block ends; fails the test if the binary
    is missing (it comes from Debian's package, see deploy/local/test-prereqs.sh)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed: run `bash deploy/local/test-prereqs.sh` "
            "(or deselect these tests with -m 'not redis')"
        )
    port = free_port()
    log = (tmp_path / "redis.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
    server = RedisServer(f"redis://127.0.0.1:{port}/0", proc)
    try:
        yield server
    finally:
        server.stop()
        log.close()
