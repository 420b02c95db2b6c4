"""One supervised child process: how it is started, probed and stopped.

Every child runs in its own session (so its process group holds it and whatever it forks, such as
vLLM's engine-core process) with its output appended to a log file. On Linux it also asks the kernel
for SIGTERM when the supervisor dies (`PR_SET_PDEATHSIG`), so even a SIGKILLed supervisor leaves no
server running: vLLM and uvicorn both shut their own workers down on SIGTERM. Stopping is always
"SIGTERM to the whole group, wait a grace period, SIGKILL the group".
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from gateway.settings import environ

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildSpec:
    """What to run. `health_url` answers 200 once the child serves; None: started means ready."""

    name: str
    argv: tuple[str, ...]
    log_path: Path
    health_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    stop_grace_s: float = 15.0


def _death_signal_hook(parent_pid: int) -> Callable[[], None]:
    """Runs in the forked child before exec: die with the parent, even if it already died."""

    def hook() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent_pid:
            os._exit(1)

    return hook


class Child:
    """A running (or stopped) instance of a `ChildSpec`; restart by calling `start` again."""

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.started_at = 0.0
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = self.spec.log_path.open("ab")
        self.starts += 1
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        header = f"\n=== {stamp} tiergate up: start #{self.starts}: {' '.join(self.spec.argv)}\n"
        self._log.write(header.encode())
        self._log.flush()
        hook = _death_signal_hook(os.getpid()) if sys.platform.startswith("linux") else None
        self.proc = subprocess.Popen(
            list(self.spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**environ(), **self.spec.env},
            cwd=self.spec.cwd,
            start_new_session=True,
            # prctl must run in the forked child. PR_SET_PDEATHSIG follows the *thread* that
            # forked, so children are started from the supervisor's main thread.
            preexec_fn=hook,
        )
        self.started_at = time.monotonic()

    def exit_code(self) -> int | None:
        """None while running (or never started); the exit status once it has ended."""
        return None if self.proc is None else self.proc.poll()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self, timeout_s: float = 2.0) -> bool:
        if not self.running():
            return False
        if self.spec.health_url is None:
            return True
        return http_ok(self.spec.health_url, timeout_s)

    def stop(self) -> None:
        """SIGTERM the child's process group, then SIGKILL it after the grace period."""
        proc = self.proc
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the child leads its own group
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.spec.stop_grace_s
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        # The leader may be gone while its workers linger; the group is killed either way.
        _signal_group(pgid, signal.SIGKILL)
        proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when `url` answers HTTP 200. Loopback only, so no proxy is consulted."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_healthy(
    children: Sequence[Child], timeout_s: float, should_stop: Callable[[], bool]
) -> Child | None:
    """Wait until every child is healthy; return the first that died or timed out, else None."""
    deadline = time.monotonic() + timeout_s
    pending = list(children)
    while pending:
        if should_stop():
            return None
        for child in list(pending):
            if child.exit_code() is not None:
                return child
            if child.healthy():
                pending.remove(child)
        if pending and time.monotonic() > deadline:
            return pending[0]
        if pending:
            time.sleep(0.5)
    return None
