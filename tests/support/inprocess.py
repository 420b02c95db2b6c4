"""The gateway in this process, called through `httpx.ASGITransport`: no socket on the gateway's
side, so unit tests of the routes and the chat service run fast and see every record. Upstreams
are still the real-HTTP fakes (`tests.support.upstream`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app
from gateway.chat.scoring import Classifier
from gateway.settings import Settings
from gateway.telemetry.record import Telemetry
from tests.support.gateway import write_config
from tests.support.records import Records
from tests.support.scoring import KeywordScorer


@dataclass
class InProcess:
    """A client into an in-process gateway, and the records that gateway reported."""

    client: httpx.AsyncClient
    records: Records


@asynccontextmanager
async def in_process(
    tmp_path: Path,
    config: dict[str, Any],
    *,
    sinks: Sequence[Telemetry] = (),
    env: dict[str, str] | None = None,
    classifier: Classifier | None = None,
    **settings: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests go straight into a gateway app built from `config`, with its
    lifespan running (backends, quota, the chat service) for the duration of the block."""
    path = write_config(tmp_path, config)
    settings.setdefault("request_log", False)
    app = create_app(
        Settings(config_path=path, log_dir=tmp_path / "logs", **settings),
        scorer=KeywordScorer(),
        env=env or {},
        sinks=sinks,
        classifier=classifier,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
    ):
        yield client
