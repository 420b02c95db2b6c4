"""`db_url`: every storage test that asks for it runs once on SQLite and once on Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.storage import DatabaseURL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseURL:
    if request.param == "sqlite":
        return DatabaseURL.sqlite(tmp_path / "requests.db")
    return DatabaseURL.parse(request.getfixturevalue("postgres_url"))
