"""The two-backend matrix: a module that asks for `backend` (`pytestmark =
pytest.mark.usefixtures("backend")`) runs every test once per backend, and `gateway` is a gateway
whose deployments all use that backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import BACKEND, RunningGateway, start_gateway, two_tier_config
from tests.support.upstream import FakeUpstream

BACKENDS = ("litellm", "openai-compatible")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both backends must behave the same to a client."""
    token = BACKEND.set(request.param)
    yield request.param
    BACKEND.reset(token)


@pytest.fixture
def gateway(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> Iterator[RunningGateway]:
    running = start_gateway(tmp_path, two_tier_config(small.url, large.url))
    yield running
    running.stop()
