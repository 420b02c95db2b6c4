"""Fixtures every test folder may use: two fake OpenAI upstreams over real HTTP on loopback, one
real Prometheus and one real PostgreSQL per session (each started only when a test asks for it;
Postgres gives every test its own database)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.support.postgres import PostgresServer, binaries, fast_server
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = binaries()
    if bindir is None:
        pytest.skip(
            "PostgreSQL's initdb and postgres are not installed: "
            "run `bash deploy/local/test-prereqs.sh`"
        )
    server = fast_server(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's Postgres, dropped after the test."""
    url = postgres_server.database()
    yield url
    postgres_server.drop(url)
