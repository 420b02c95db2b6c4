"""Server processes for the benchmark: start, wait until they answer, measure, stop.

Each server is a child process of the benchmark, started in its own session and stopped by its
own pid. Its cost is read from /proc: CPU seconds (user + system, the process and any children it
spawned) and peak resident memory (`VmHWM`, summed over the same processes).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tree(pid: int) -> list[int]:
    """`pid` and its live descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{p}/task/{task}/children").read_text().split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            todo.extend(int(c) for c in children)
    return out


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def peak_rss_mb(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


@dataclass
class Server:
    """One server under test: its command, where it logs, and the URL that says it is up."""

    name: str
    command: list[str]
    ready_url: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def start(self, timeout_s: float = 180.0) -> Server:
        handle = self.log.open("wb")
        self.process = subprocess.Popen(
            self.command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log}")
            try:
                if httpx.get(self.ready_url, timeout=2).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.ready_url} in {timeout_s:.0f}s")

    def stop(self) -> None:
        """SIGTERM the server and each process it started, by pid; SIGKILL what lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        pids = _tree(self.process.pid)
        for p in reversed(pids):
            with _gone():
                os.kill(p, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            for p in pids:
                with _gone():
                    os.kill(p, signal.SIGKILL)
            self.process.wait(timeout=5)


class _gone:
    """Suppress ProcessLookupError: the process already exited."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is ProcessLookupError
