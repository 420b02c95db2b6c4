"""Running a real gateway on loopback for tests, in front of fake upstreams."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from gateway.app import create_app
from gateway.settings import Settings
from gateway.telemetry.record import Telemetry
from tests.support.scoring import KeywordScorer
from tests.support.upstream import serve_in_thread

BACKEND: ContextVar[str | None] = ContextVar("tiergate_test_backend", default=None)
"""The backend `start_gateway` gives every deployment whose config does not name one (None: the
config's own default). tests/gateway sets it per test, so one suite runs against every backend."""


def two_tier_config(small_url: str, large_url: str, **overrides: Any) -> dict[str, Any]:
    """A complete config: one small and one large OpenAI-compatible deployment."""
    config: dict[str, Any] = {
        "deployments": {
            "small-a": {
                "model": "openai/small-model",
                "api_base": small_url,
                "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.2},
                "capabilities": {"tools": False, "max_context_tokens": 1000},
            },
            "large-a": {
                "model": "openai/large-model",
                "api_base": large_url,
                "price": {"input_per_mtok": 5.0, "output_per_mtok": 15.0},
            },
        },
        "tiers": {"small": {"deployments": ["small-a"]}, "large": {"deployments": ["large-a"]}},
        "policies": {"balanced": {"threshold": 0.5}},
        "default_policy": "balanced",
    }
    for key, value in overrides.items():
        config[key] = value
    return config


@dataclass
class RunningGateway:
    url: str
    """Base URL including `/v1`."""
    root: str
    scorer: KeywordScorer
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Stop and wait for shutdown: litellm keeps process-wide clients that the app's
        shutdown closes, and the next test's gateway must not meet them."""
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start_gateway(
    tmp_path: Path,
    config: dict[str, Any],
    env: dict[str, str] | None = None,
    *,
    sinks: Sequence[Telemetry] = (),
    **settings: Any,
) -> RunningGateway:
    backend = BACKEND.get()
    if backend is not None:
        deployments = config.get("deployments", {})
        config = {
            **config,
            "deployments": {n: {"backend": backend, **d} for n, d in deployments.items()},
        }
    path = tmp_path / "tiergate.yaml"
    path.write_text(yaml.safe_dump(config))
    scorer = KeywordScorer()
    app = create_app(
        Settings(config_path=path, log_dir=tmp_path / "logs", **settings),
        scorer=scorer,
        env=env or {},
        sinks=sinks,
    )
    server, thread, sock = serve_in_thread(app)
    root = f"http://127.0.0.1:{sock.getsockname()[1]}"
    return RunningGateway(root + "/v1", root, scorer, server, thread)
