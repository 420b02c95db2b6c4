"""The two-backend matrix: a module that asks for `backend` (`pytestmark =
pytest.mark.usefixtures("backend")`) runs every test once per backend, and `gateway` is a gateway
whose deployments all use that backend. `inproc` is the two-tier gateway in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.gateway import BACKEND, RunningGateway, start_gateway, two_tier_config
from tests.support.inprocess import InProcess, in_process
from tests.support.records import Records
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


@pytest.fixture
async def inproc(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> AsyncIterator[InProcess]:
    records = Records()
    config = two_tier_config(small.url, large.url)
    async with in_process(tmp_path, config, sinks=[records]) as client:
        yield InProcess(client, records)
