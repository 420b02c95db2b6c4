"""Settings: the gateway and the commands read one log directory, the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.logs import default_db_path
from gateway.settings import CommandSettings, Settings, default_log_dir


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", default_log_dir()), ("~/tg-logs", Path.home() / "tg-logs"), ("/var/tg", Path("/var/tg"))],
)
def test_the_gateway_and_tiergate_logs_agree_on_the_log_dir(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: Path
) -> None:
    monkeypatch.setenv("TIERGATE_LOG_DIR", value)
    assert Settings(config_path=Path("x.yaml")).log_dir == expected
    assert CommandSettings().log_dir == expected
    assert default_db_path() == expected / "requests.db"


def test_an_empty_models_dir_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERGATE_MODELS_DIR", "")
    assert CommandSettings().models_dir.parts[-3:] == (".cache", "tiergate", "models")


def test_the_request_log_url_is_read_by_the_gateway_and_the_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIERGATE_REQUEST_LOG_URL", "postgresql://u:p@db:5432/tiergate")
    assert (
        Settings(config_path=Path("x.yaml")).request_log_url == "postgresql://u:p@db:5432/tiergate"
    )
    assert CommandSettings().request_log_url == "postgresql://u:p@db:5432/tiergate"
    monkeypatch.setenv("TIERGATE_REQUEST_LOG_URL", "")
    assert Settings(config_path=Path("x.yaml")).request_log_url is None
