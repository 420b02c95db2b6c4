"""The supervisor behind `tiergate up`, driven with a fake server that starts in milliseconds.

The fake (tests/gateway/local/fake_server.py) takes vLLM's command line and forks a worker like
vLLM's engine core, so these tests check what matters in production: restarts after a crash, and
that no process of any child's group survives SIGTERM or even SIGKILL of the supervisor.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.local.children import Child, ChildSpec, http_ok
from gateway.local.supervisor import RestartBackoff, Supervisor, plan, vllm_spec
from tests.support.paths import REPO
from tests.support.ports import free_port

FAKE = Path(__file__).with_name("fake_server.py")


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def wait_for(predicate: object, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def pid_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    d = tmp_path / "pids"
    d.mkdir()
    monkeypatch.setenv("FAKE_PID_DIR", str(d))
    yield d
    for entry in d.iterdir():  # never leave a fake behind, even when a test fails
        pid = int(entry.name)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def fake_spec(name: str, tmp_path: Path, port: int) -> ChildSpec:
    return ChildSpec(
        name=name,
        argv=(sys.executable, str(FAKE), "--port", str(port)),
        log_path=tmp_path / "logs" / f"{name}.log",
        health_url=f"http://127.0.0.1:{port}/health",
        stop_grace_s=5.0,
    )


def test_a_killed_backend_is_restarted_and_everything_stops(tmp_path: Path, pid_dir: Path) -> None:
    backend_port, front_port = free_port(), free_port()
    sup = Supervisor(
        backends=[fake_spec("vllm:fake", tmp_path, backend_port)],
        front=fake_spec("gateway", tmp_path, front_port),
        start_timeout_s=20,
        backoff=RestartBackoff(initial_s=0.2, maximum_s=1.0),
        poll_s=0.1,
        on_ready=["READY"],
    )
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(sup.run()))
    thread.start()
    try:
        assert wait_for(lambda: http_ok(f"http://127.0.0.1:{front_port}/health"))
        servers = _pids(pid_dir, "server")
        assert len(servers) == 2
        backend_pid = next(p for p in servers if _listens(p, backend_port))
        os.kill(backend_pid, signal.SIGKILL)
        assert wait_for(lambda: len(_pids(pid_dir, "server")) == 3), "backend was not restarted"
        assert wait_for(lambda: http_ok(f"http://127.0.0.1:{backend_port}/health"))
    finally:
        sup.stopping.set()
        thread.join(timeout=30)
    assert result == [0]
    assert [p for p in _all_pids(pid_dir) if alive(p)] == []
    log = (tmp_path / "logs" / "vllm:fake.log").read_text()
    assert "start #2" in log


def test_a_backend_that_never_gets_healthy_fails_start_up(tmp_path: Path, pid_dir: Path) -> None:
    spec = ChildSpec(
        name="vllm:broken",
        argv=(sys.executable, "-c", "import sys; print('no model here'); sys.exit(3)"),
        log_path=tmp_path / "broken.log",
        health_url=f"http://127.0.0.1:{free_port()}/health",
    )
    sup = Supervisor(backends=[spec], front=None, start_timeout_s=20)
    assert sup.run() == 1
    assert "no model here" in (tmp_path / "broken.log").read_text()


def test_backoff_doubles_up_to_its_ceiling() -> None:
    b = RestartBackoff(initial_s=1, maximum_s=10)
    assert [b.delay(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 10]


def test_vllm_command_line_follows_the_serve_block(tmp_path: Path) -> None:
    config = load_config(REPO / "deploy" / "local" / "tiergate.yaml")
    serve = config.deployments["smollm2-local"].serve
    assert serve is not None
    spec = vllm_spec("smollm2-local", serve, tmp_path)
    argv = list(spec.argv)
    assert argv[argv.index("--max-model-len") + 1] == "2048"
    assert argv[argv.index("--served-model-name") + 1] == "smollm2-135m"
    assert not argv[argv.index("--model") + 1].startswith("~")
    assert spec.env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert spec.health_url == f"http://127.0.0.1:{serve.port}/health"
    backends, front = plan(config, REPO / "deploy/local/tiergate.yaml", "0.0.0.0", 9, tmp_path)
    assert [b.name for b in backends] == ["vllm:smollm2-local"]
    assert front.argv[-6:] == (
        "--config",
        str(REPO / "deploy/local/tiergate.yaml"),
        "--host",
        "0.0.0.0",
        "--port",
        "9",
    )


def _write_config(tmp_path: Path, vllm_port: int) -> Path:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    path = tmp_path / "tiergate.yaml"
    path.write_text(
        f"""
deployments:
  local:
    model: hosted_vllm/fake
    api_base: http://127.0.0.1:{vllm_port}/v1
    serve: {{model_path: {model_dir}, port: {vllm_port}}}
  hosted:
    model: openai/gpt-4o-mini
    api_key_env: TIERGATE_TEST_KEY_THAT_IS_NEVER_SET
tiers:
  small: {{deployments: [local]}}
  large: {{deployments: [hosted]}}
"""
    )
    return path


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_tiergate_up_leaves_no_process_behind(tmp_path: Path, pid_dir: Path, how: str) -> None:
    vllm_port, gateway_port = free_port(), free_port()
    config = _write_config(tmp_path, vllm_port)
    fake = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))}"
    env = {
        **os.environ,
        "TIERGATE_VLLM_COMMAND": fake,
        "TIERGATE_GATEWAY_COMMAND": fake,
        "TIERGATE_LOG_DIR": str(tmp_path / "logs"),
    }
    env.pop("TIERGATE_TEST_KEY_THAT_IS_NEVER_SET", None)
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "up",
            "--config",
            str(config),
            "--port",
            str(gateway_port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as up:
        try:
            _stop_after_banner(up, pid_dir, gateway_port, how)
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()


def _stop_after_banner(
    up: subprocess.Popen[str], pid_dir: Path, gateway_port: int, how: str
) -> None:
    assert up.stdout is not None and up.stderr is not None
    banner = []
    for line in up.stdout:
        banner.append(line)
        if line.startswith("-" * 20) and len(banner) > 1:
            break
    text = "".join(banner)
    assert f"http://127.0.0.1:{gateway_port}/v1" in text, up.stderr.read()
    assert "unavailable: TIERGATE_TEST_KEY_THAT_IS_NEVER_SET is not set" in text
    assert "curl -s" in text and "from openai import OpenAI" in text
    pids = _all_pids(pid_dir)
    assert len(pids) == 4  # two servers, each with its worker
    up.send_signal(getattr(signal, how))
    code = up.wait(timeout=60)
    if how != "SIGKILL":
        assert code == 0, up.stderr.read()
    assert wait_for(lambda: not any(alive(p) for p in pids), timeout_s=20), [
        p for p in pids if alive(p)
    ]


def _pids(pid_dir: Path, role: str) -> list[int]:
    return [int(p.name) for p in pid_dir.iterdir() if p.read_text() == role]


def _all_pids(pid_dir: Path) -> list[int]:
    return [int(p.name) for p in pid_dir.iterdir()]


def _listens(pid: int, port: int) -> bool:
    """Whether `pid` was started for `port` (the fake takes it on its command line)."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return str(port).encode() in cmdline


def test_child_stop_is_harmless_before_start(tmp_path: Path) -> None:
    Child(fake_spec("never", tmp_path, 1)).stop()


def test_up_refuses_a_missing_model_with_the_command_that_makes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.local.supervisor import run_up

    config = _write_config(tmp_path, free_port())
    (tmp_path / "model").rmdir()
    assert run_up(config, "127.0.0.1", free_port(), tmp_path / "logs") == 2
    assert "tiergate models prepare" in capsys.readouterr().err
