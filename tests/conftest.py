"""Fixtures every test folder may use: two fake OpenAI upstreams over real HTTP on loopback, and
one real Prometheus per session (started only by the tests that ask for it)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.support.prometheus import PrometheusServer
from tests.support.upstream import FakeUpstream


@pytest.fixture
def small() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream("small-model").start()
    yield upstream
    upstream.stop()


@pytest.fixture
def large() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream("large-model").start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
