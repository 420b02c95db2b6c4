"""LiteLLM's proxy, the comparison: its own environment, one worker, no database, same upstream.

litellm[proxy] pins versions that clash with the gateway's environment, so it lives in
`.venv-litellm-proxy`, made here on first use. The version is pinned: 1.106.2 is the one the issue
measured, and 1.107.0 was a compromised release that must never be installed.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import yaml

from bench.procs import Server

PIN = "litellm[proxy]==1.106.2"
VERSION = "1.106.2"
MODEL = "bench"
"""The name clients send to the proxy."""
MASTER_KEY = "sk-" + secrets.token_hex(24)
"""Made per run; the load driver sends it to every system alike (Tiergate ignores it)."""


def ensure_venv(root: Path, python: str = "python3.11") -> Path:
    """The proxy's environment under `root`, created and installed if missing; returns its bin."""
    venv = root / ".venv-litellm-proxy"
    bin_dir = venv / "bin"
    if not (bin_dir / "litellm").exists() or installed_version(bin_dir) != VERSION:
        print(f"bench: installing {PIN} into {venv} (once)", file=sys.stderr)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(bin_dir / "pip"), "install", "-q", "--disable-pip-version-check", PIN],
            check=True,
        )
    return bin_dir


def installed_version(bin_dir: Path) -> str | None:
    done = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def proxy_server(bin_dir: Path, upstream_base: str, port: int, workdir: Path) -> Server:
    """The proxy configured with one model on the bench upstream, as its docs show it."""
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": "openai/bench-model",
                    "api_base": upstream_base,
                    "api_key": "none",
                },
            }
        ],
        # The proxy refuses to start without one; without a database it checks only this key.
        "general_settings": {"master_key": MASTER_KEY},
    }
    path = workdir / "litellm-proxy.yaml"
    path.write_text(yaml.safe_dump(config))
    return Server(
        name="litellm-proxy",
        command=[
            str(bin_dir / "litellm"),
            "--config",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        ready_url=f"http://127.0.0.1:{port}/health/liveliness",
        log=workdir / "litellm-proxy.log",
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"},
        cwd=workdir,
    )
