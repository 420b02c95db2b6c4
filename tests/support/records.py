"""Helpers for reliability tests: a record-collecting telemetry sink, gateways with it attached,
a redis-server handle, and small config builders."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.telemetry.record import RequestRecord
from tests.support.gateway import RunningGateway, start_gateway, two_tier_config

EASY = [{"role": "user", "content": "What is 2 + 2?"}]
HARD = [{"role": "user", "content": "HARD: design a compiler"}]


@dataclass
class Records:
    """A `Telemetry` sink that keeps every record, for assertions on what the gateway reported."""

    items: list[RequestRecord] = field(default_factory=list)
    started: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def request_started(self) -> None:
        self.started += 1

    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.items.append(rec)

    async def aclose(self) -> None:
        return None

    def wait(self, n: int, timeout_s: float = 10.0) -> list[RequestRecord]:
        """The first `n` records, once that many have arrived (streams report after their end)."""
        deadline = time.monotonic() + timeout_s
        while len(self.items) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} records, got {len(self.items)}")
            time.sleep(0.01)
        return self.items[:n]

    @property
    def last(self) -> RequestRecord:
        return self.wait(1)[-1] if len(self.items) <= 1 else self.items[-1]


@dataclass
class Gateway:
    running: RunningGateway
    records: Records

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def root(self) -> str:
        return self.running.root

    @property
    def app(self) -> Any:
        return self.running.server.config.app

    def post(self, body: dict[str, Any], key: str | None = None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        return httpx.post(
            self.url + "/chat/completions", json=body, headers=headers, timeout=30, **kw
        )

    def metrics(self, key: str | None = None) -> str:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.get(self.root + "/metrics", headers=headers).text

    def stop(self) -> None:
        self.running.stop()


def start(
    tmp_path: Path, config: dict[str, Any], env: dict[str, str] | None = None, **settings: Any
) -> Gateway:
    """A gateway on loopback with a `Records` sink attached to its chat service."""
    records = Records()
    running = start_gateway(tmp_path, config, env, sinks=[records], **settings)
    return Gateway(running, records)


def config(small_url: str, large_url: str, **deployment: Any) -> dict[str, Any]:
    """The two-tier test config with `deployment` fields set on both deployments."""
    cfg = two_tier_config(small_url, large_url)
    for dep in cfg["deployments"].values():
        dep.update(deployment)
    return cfg


def chat(content: str = "What is 2 + 2?", **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}


def sse_events(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


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
