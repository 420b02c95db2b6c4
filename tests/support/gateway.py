"""Running a real gateway on loopback for tests, in front of fake upstreams.

`start_gateway` builds the app as `tiergate serve` does (with the keyword scorer and no process
environment) and serves it in a thread with `tiergate serve`'s connection handling; `start` adds a
`Records` sink, and `Gateway` wraps the result with the calls the reliability and access tests
make. `config`, `chat` and `sse_events` build and read what they send.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import uvicorn
import yaml

from gateway.app import create_app
from gateway.chat.scoring import Classifier
from gateway.lifecycle import Drain
from gateway.server import server_config
from gateway.settings import Settings
from gateway.telemetry.record import Telemetry
from tests.support.records import Records
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
    scorer: Any
    server: uvicorn.Server
    thread: threading.Thread
    clients: list[openai.OpenAI] = field(default_factory=list)

    def sdk(self, api_key: str = "unused") -> openai.OpenAI:
        """The OpenAI SDK on this gateway, closed when it stops: an unclosed client's sockets
        reach the garbage collector later, whose ResourceWarning then fails whatever test runs."""
        client = openai.OpenAI(base_url=self.url, api_key=api_key, max_retries=0)
        self.clients.append(client)
        return client

    def stop(self) -> None:
        """Stop and wait for shutdown: litellm keeps process-wide clients that the app's
        shutdown closes, and the next test's gateway must not meet them."""
        for client in self.clients:
            client.close()
        self.server.should_exit = True
        self.thread.join(timeout=15)


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    """`config` as `tmp_path/tiergate.yaml`, every deployment on `BACKEND` unless it names one."""
    backend = BACKEND.get()
    if backend is not None:
        deployments = config.get("deployments", {})
        config = {
            **config,
            "deployments": {n: {"backend": backend, **d} for n, d in deployments.items()},
        }
    path = tmp_path / "tiergate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # tiers are ordered as listed
    return path


def start_gateway(
    tmp_path: Path,
    config: dict[str, Any],
    env: dict[str, str] | None = None,
    *,
    sinks: Sequence[Telemetry] = (),
    scorer: Any = None,
    verifiers: Mapping[str, Any] | None = None,
    drain: Drain | None = None,
    classifier: Classifier | None = None,
    **settings: Any,
) -> RunningGateway:
    """`scorer`: the router (default: a new `KeywordScorer`); `verifiers`: answer verifiers by
    the names policies give; `drain`: the app's (a test begins it to see the gateway drain);
    `classifier`: the operator-route classifier (`create_app`); `settings`: `Settings` fields."""
    path = write_config(tmp_path, config)
    scorer = KeywordScorer() if scorer is None else scorer
    options = Settings(config_path=path, log_dir=tmp_path / "logs", **settings)
    app = create_app(
        options,
        scorer=scorer,
        env=env or {},
        sinks=sinks,
        verifiers=verifiers,
        drain=drain,
        classifier=classifier,
    )
    # Served as `tiergate serve` serves it (its connection limits from `settings`), quietly.
    uvicorn_config = server_config(
        app, options, log_level="warning", timeout_graceful_shutdown=1
    )
    server, thread, sock = serve_in_thread(app, uvicorn_config)
    root = f"http://127.0.0.1:{sock.getsockname()[1]}"
    return RunningGateway(root + "/v1", root, scorer, server, thread)


EASY = [{"role": "user", "content": "What is 2 + 2?"}]
HARD = [{"role": "user", "content": "HARD: design a compiler"}]


@dataclass
class Gateway:
    """A running gateway and the records it reported."""

    running: RunningGateway
    records: Records

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def root(self) -> str:
        return self.running.root

    def post(self, body: dict[str, Any], key: str | None = None, **kw: Any) -> httpx.Response:
        """`body` as ASCII JSON (`as_json`), so tests may send what `json=` cannot encode."""
        sent = as_json(body)
        headers = {**sent["headers"], **dict(kw.pop("headers", {}))}
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        return httpx.post(
            self.url + "/chat/completions",
            content=sent["content"],
            headers=headers,
            timeout=30,
            **kw,
        )

    def metrics(self, key: str | None = None) -> str:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.get(self.root + "/metrics", headers=headers).text

    def stop(self) -> None:
        self.running.stop()


def start(
    tmp_path: Path,
    config: dict[str, Any],
    env: dict[str, str] | None = None,
    drain: Drain | None = None,
    classifier: Classifier | None = None,
    **settings: Any,
) -> Gateway:
    """A gateway on loopback with a `Records` sink among its telemetry sinks."""
    records = Records()
    running = start_gateway(
        tmp_path, config, env, sinks=[records], drain=drain, classifier=classifier, **settings
    )
    return Gateway(running, records)


def config(small_url: str, large_url: str, **deployment: Any) -> dict[str, Any]:
    """The two-tier test config with `deployment` fields set on both deployments."""
    cfg = two_tier_config(small_url, large_url)
    for dep in cfg["deployments"].values():
        dep.update(deployment)
    return cfg


def chat(content: str = "What is 2 + 2?", **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}


def as_json(body: Any) -> dict[str, Any]:
    """httpx keyword arguments sending `body` as ASCII JSON (`\\uXXXX` escapes), which carries
    what `json=` cannot encode: a lone surrogate is valid JSON but not valid UTF-8."""
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


def sse_events(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
