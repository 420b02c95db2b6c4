"""Request-log URLs: what is accepted, what is refused (naming the value), what may be printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.config.load import ConfigError
from gateway.storage import DatabaseURL, DatabaseURLError, StorageError, resolve
from tests.support.gateway import two_tier_config, write_config


def test_sqlite_urls_relative_and_absolute() -> None:
    assert DatabaseURL.parse("sqlite:///logs/r.db").path == Path("logs/r.db")
    assert DatabaseURL.parse("sqlite:////var/log/r.db").path == Path("/var/log/r.db")
    assert DatabaseURL.sqlite(Path("/x/requests.db")).path == Path("/x/requests.db")


def test_postgres_urls_and_the_libpq_alias() -> None:
    url = DatabaseURL.parse("postgres://u:secret@db:5432/tiergate?sslmode=require")
    assert url.dialect == "postgres"
    assert url.url == "postgresql://u:secret@db:5432/tiergate?sslmode=require"
    assert "secret" not in url.redacted and "secret" not in str(url)
    assert url.redacted == "postgresql://u:***@db:5432/tiergate?sslmode=require"


@pytest.mark.parametrize(
    "bad",
    ["mysql://u:pw@h/db", "requests.db", "sqlite://relative.db", "postgresql:///nohost"],
)
def test_refused_urls_name_the_value_and_what_is_accepted(bad: str) -> None:
    with pytest.raises(DatabaseURLError) as info:
        DatabaseURL.parse(bad)
    assert isinstance(info.value, StorageError)
    message = str(info.value)
    assert "sqlite:///" in message or "postgresql://" in message


def test_a_refused_url_never_prints_its_password() -> None:
    with pytest.raises(DatabaseURLError) as info:
        DatabaseURL.parse("mysql://u:hunter2@h/db")
    assert "hunter2" not in str(info.value)


def test_settings_win_over_the_config_then_the_default(tmp_path: Path) -> None:
    assert resolve(None, None, tmp_path).path == tmp_path / "requests.db"
    assert resolve(None, "postgresql://c@h/db", tmp_path).url == "postgresql://c@h/db"
    assert resolve("sqlite:///s.db", "postgresql://c@h/db", tmp_path).path == Path("s.db")


def test_the_config_file_takes_a_url_and_refuses_a_bad_one(tmp_path: Path) -> None:
    config = two_tier_config("http://s", "http://l", request_log_url="postgresql://u@h:5432/d")
    assert load_config(write_config(tmp_path, config)).request_log_url == "postgresql://u@h:5432/d"
    config["request_log_url"] = "redis://h"
    with pytest.raises(ConfigError, match=r"request_log_url.*postgresql://"):
        load_config(write_config(tmp_path, config))
