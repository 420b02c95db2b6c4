"""`tiergate serve --workers N`: several gateway processes on one port, so every core serves.

One Python process uses one core for its event loop; the router's encoder can use more, but the
request path (parsing, routing, relaying) cannot. `--workers N` binds the listening socket once in
a small supervisor process and starts N workers (spawned, each a whole gateway: its own router,
backends and request-log writer) that accept from that socket.

- How many: `auto` is the CPUs this process may use: its affinity mask (`taskset`,
  `sched_getaffinity`), capped by the cgroup CPU quota (`cpu.max` in cgroup v2,
  `cpu.cfs_quota_us / cpu.cfs_period_us` in v1), rounded up. In a Kubernetes pod with
  `limits.cpu: 2`, `os.cpu_count()` says the node's 64 cores; this says 2.
- The encoder's threads follow: cores / workers each (TIERGATE_ENCODER_THREADS, unless set), so
  N encoders do not fight over the same cores.
- Metrics: prometheus-client's multiprocess mode. PROMETHEUS_MULTIPROC_DIR (a fresh temporary
  directory unless set; emptied at start either way) holds every worker's values and `/metrics`
  on any worker merges them; a dead worker's live gauges are dropped.
- Request log: each worker writes its own rows to the one database (SQLite in WAL mode with a
  busy timeout, or Postgres); none is lost to another worker's write.
- Limits: rpm, tpm and budgets counted in memory would be counted per worker, multiplying every
  limit by N; `refusal` turns that into an error at start unless the config shares them through
  Redis (`redis_url`). Deployment concurrency caps and circuit breakers stay per worker.
- Stopping: SIGTERM (or SIGINT) to the supervisor is passed to every worker, each drains as one
  gateway does; the supervisor exits once they have. A worker that dies otherwise is started
  again (not when it dies within seconds of its start: then the supervisor stops, exit code 1).
  A supervisor that is killed takes its workers with it (Linux's parent-death signal), as a
  killed container's processes all end: left alive, they would go on serving on the port and
  hold it against the gateway's restart.
"""

from __future__ import annotations

import ctypes
import logging
import math
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path
from types import FrameType
from typing import Any

from gateway.config import GatewayConfig

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
EARLY_DEATH_S = 10.0
"""A worker that exits this soon after its start is broken (a port, a database), not unlucky."""
PR_SET_PDEATHSIG = 1
"""prctl(2): the signal a process gets when the thread that started it ends."""
STOP_TIMEOUT_S = 60.0
"""How long the supervisor waits for draining workers before it kills what is left (`tiergate
serve` passes the drain's grace and uvicorn's margin instead)."""


# --- how many -----------------------------------------------------------------------------------


def usable_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The CPUs this process may use: the affinity mask, capped by the cgroup CPU quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = cgroup_cpu_quota(root, proc_cgroup)
    cpus = cpus or 1
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota - 1e-9)))
    return max(1, cpus)


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """CPUs' worth of time the cgroup allows per period (1.5 = one and a half), or None: no
    quota. The smallest over this process's cgroup and its ancestors, v2 and v1 alike."""
    quotas = []
    for directory in _cgroup_dirs(root, proc_cgroup):
        v2 = _read(directory / "cpu.max").split()
        if len(v2) == 2 and v2[0] != "max":
            quotas.append(_ratio(v2[0], v2[1]))
        v1_quota = _read(directory / "cpu.cfs_quota_us")
        v1_period = _read(directory / "cpu.cfs_period_us")
        if v1_quota and v1_period and not v1_quota.startswith("-"):
            quotas.append(_ratio(v1_quota, v1_period))
    found = [q for q in quotas if q is not None and q > 0]
    return min(found) if found else None


def _cgroup_dirs(root: Path, proc_cgroup: Path) -> list[Path]:
    """The cgroup directories that may hold this process's CPU quota, innermost first."""
    relative: list[tuple[Path, str]] = []
    for line in _read(proc_cgroup).splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: the unified hierarchy at the root
            relative.append((root, path))
        elif "cpu" in controllers.split(","):
            for name in (controllers, "cpu", "cpu,cpuacct"):
                if (root / name).is_dir():
                    relative.append((root / name, path))
                    break
    directories = []
    for base, path in relative or [(root, "/")]:
        inner = base / path.lstrip("/")
        while True:
            directories.append(inner)
            if inner == base or base not in inner.parents:
                break
            inner = inner.parent
    return directories


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8").strip()
    except OSError:
        return ""


def _ratio(quota: str, period: str) -> float | None:
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def resolve_workers(value: str | None, config: GatewayConfig, cpus: int) -> int:
    """The worker count: `value` (a whole number >= 1 or `auto`) or, when None, the default: one,
    or `auto` when the config shares its limits through Redis. ValueError names what is wrong."""
    if value is None:
        return cpus if config.redis_url else 1
    text = value.strip().lower()
    if text == "auto":
        return cpus
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"--workers {value!r}: expected a whole number >= 1 or 'auto'")
    return int(text)


def refusal(workers: int, config: GatewayConfig) -> str | None:
    """Why `workers` processes cannot run this config (one line), or None. Limits counted in
    memory would be counted by each worker apart: every rpm, tpm and budget times `workers`."""
    if workers == 1 or config.redis_url:
        return None
    limited = [k.id for k in config.keys if k.rpm or k.tpm or k.budget_usd]
    if not limited:
        return None
    return (
        f"--workers {workers} with rate limits and budgets counted in memory would give each "
        f"key {workers}x its rpm, tpm and budget (keys: {', '.join(limited)}); set redis_url "
        "in the config to share them, or run one worker"
    )


def encoder_threads(cpus: int, workers: int) -> int:
    """Cores for each worker's encoder: the usable cores shared out, at least one."""
    return max(1, cpus // workers)


def clean_multiproc_dir(path: Path) -> None:
    """Empty prometheus-client's multiprocess directory: values of an earlier run would be
    merged into this one's."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


# --- the supervisor -----------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts from (bound once: one "address in use")."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """Starts `workers` processes running `target(sock, *args)`, passes SIGTERM and SIGINT on,
    restarts a worker that dies while serving, and returns the exit code once all are gone."""

    def __init__(
        self,
        target: Callable[..., None],
        args: tuple[Any, ...],
        sock: socket.socket,
        workers: int,
        on_exit: Callable[[int], None] = lambda pid: None,
        stop_s: float = STOP_TIMEOUT_S,
    ) -> None:
        self._target = target
        self._args = args
        self._sock = sock
        self._workers = workers
        self._on_exit = on_exit
        self._stop_s = stop_s
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[int, tuple[Any, float]] = {}
        self._stopping: int | None = None

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for index in range(self._workers):
                self._start(index)
            log.info("tiergate: %d workers started (pids %s)", self._workers, self.pids)
            return self._watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p, _ in self._processes.values()]

    def _start(self, index: int) -> None:
        process = self._context.Process(
            target=_run_worker,
            args=(os.getpid(), self._target, self._sock, *self._args),
            name=f"tiergate-worker-{index}",
        )
        process.start()
        self._processes[index] = (process, time.monotonic())

    def _signal(self, sig: int, frame: FrameType | None) -> None:
        if self._stopping is not None:  # a second signal: stop waiting
            for process, _ in self._processes.values():
                if process.is_alive():
                    process.kill()
            return
        self._stopping = sig
        # SIGTERM drains each worker. A terminal's Ctrl-C has already sent them SIGINT as well
        # (one process group); SIGTERM after it neither repeats nor forces their shutdown.
        for process, _ in self._processes.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    def _watch(self) -> int:
        code = 0
        deadline: float | None = None
        while self._processes:
            if self._stopping is not None and deadline is None:
                deadline = time.monotonic() + self._stop_s
            if deadline is not None and time.monotonic() > deadline:
                for process, _ in self._processes.values():
                    process.kill()
            sentinels = [p.sentinel for p, _ in self._processes.values()]
            wait(sentinels, timeout=0.5)
            for index, (process, started) in list(self._processes.items()):
                if process.is_alive():
                    continue
                process.join()
                del self._processes[index]
                self._on_exit(process.pid)
                if self._stopping is not None:
                    continue
                if time.monotonic() - started < EARLY_DEATH_S:
                    log.error(
                        "tiergate: worker %d (pid %s) exited with %s right after its start; "
                        "stopping the others",
                        index,
                        process.pid,
                        process.exitcode,
                    )
                    code = 1
                    self._signal(signal.SIGTERM, None)
                    continue
                log.warning(
                    "tiergate: worker %d (pid %s) exited with %s; starting it again",
                    index,
                    process.pid,
                    process.exitcode,
                )
                self._start(index)
        return code


def _run_worker(
    supervisor: int, target: Callable[..., None], sock: socket.socket, *args: Any
) -> None:
    """A worker's first step: end with the supervisor, then run the gateway."""
    die_with(supervisor)
    target(sock, *args)


def die_with(supervisor: int) -> None:
    """SIGKILL this process when `supervisor` (its parent) dies, however it dies. Exits at once
    if the supervisor is already gone (it died before the request could be made)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != supervisor:
        os._exit(1)
