"""`tiergate logs summary` and `tiergate logs export` on a log written by the real RequestLog."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest

from gateway.cli.logs import parse_since, percentile
from gateway.cli.main import main
from gateway.telemetry.requestlog import DB_FILENAME, RequestLog
from tests.support.records import make_record


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / DB_FILENAME
    log = RequestLog.open(path)
    now = time.time()
    for i in range(10):  # small tier: cheap, saves 0.0009 each
        log.record(make_record(started_at=now - 60, latency_s=0.1 * (i + 1)))
    for _ in range(4):  # large tier: costs what all-large costs
        log.record(
            make_record(
                started_at=now - 60,
                intended_tier="large",
                served_tier="large",
                deployment="big",
                cost_usd=0.001,
                counterfactual_cost_usd=0.001,
                latency_s=2.0,
            )
        )
    log.record(make_record(started_at=now - 60, status_code=502, served_tier=None, cost_usd=0))
    log.record(make_record(started_at=now - 60, client_aborted=True, partial=True))  # not an error
    log.record(make_record(started_at=now - 3 * 86400))  # outside the default window
    log.close()
    return path


def test_since_parses_units_and_all() -> None:
    assert parse_since("30m") == 1800
    assert parse_since("1.5h") == 5400
    assert parse_since("2w") == 14 * 86400
    assert parse_since("all") is None
    with pytest.raises(argparse.ArgumentTypeError, match="30m or 1h"):
        parse_since("yesterday")


def test_percentile_is_nearest_rank() -> None:
    values = [0.1 * i for i in range(1, 11)]
    assert percentile(values, 50) == pytest.approx(0.5)
    assert percentile(values, 95) == pytest.approx(1.0)
    assert percentile([], 50) is None


def test_summary_json_adds_up(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "summary", "--db", str(db), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_route = {(r["policy"], r["tier"], r["deployment"]): r for r in out["routes"]}
    small = by_route[("balanced", "small", "smol")]
    assert small["requests"] == 11
    assert small["errors"] == 0
    assert small["cost_usd"] == pytest.approx(0.0011)
    assert small["savings_usd"] == pytest.approx(0.0099)
    assert small["savings_pct"] == pytest.approx(90.0)
    # The aborted request's latency (0.2 s, to the hang-up) is left out of the percentiles.
    assert small["latency_p50_s"] == pytest.approx(0.5)
    assert small["latency_p95_s"] == pytest.approx(1.0)
    large = by_route[("balanced", "large", "big")]
    assert large["savings_usd"] == pytest.approx(0.0)
    assert by_route[("balanced", "none", "smol")]["errors"] == 1
    total = out["total"]
    assert total["requests"] == 16
    assert total["errors"] == 1
    assert total["cost_usd"] == pytest.approx(0.0011 + 0.004)
    assert total["counterfactual_cost_usd"] == pytest.approx(0.011 + 0.004 + 0.001)


def test_summary_window(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["logs", "summary", "--db", str(db), "--since", "all", "--json"])
    assert json.loads(capsys.readouterr().out)["total"]["requests"] == 17
    main(["logs", "summary", "--db", str(db), "--since", "10s", "--json"])
    assert json.loads(capsys.readouterr().out)["total"]["requests"] == 0


def test_summary_table(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "summary", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "requests in the last 1h" in out
    header = out.splitlines()[1]
    for column in ("policy", "tier", "deployment", "cost $", "all-large $", "saved", "p95 ms"):
        assert column in header
    assert out.splitlines()[-1].startswith("all")
    assert "90.0%" in out


def test_summary_without_a_log_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERGATE_LOG_DIR", str(tmp_path / "nowhere"))
    assert main(["logs", "summary"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nowhere" / DB_FILENAME) in err
    assert "--db" in err


def test_export_writes_training_format_rows(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rows.jsonl"
    assert main(["logs", "export", "--db", str(db), "--since", "all", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 17
    first = lines[0]
    # The router's format: prompt, weak, strong, source; outcomes left for the user to attach.
    assert first["prompt"] is None and first["weak"] is None and first["strong"] is None
    assert first["source"] == "tiergate-log"
    assert first["request_id"].startswith("req-")
    assert first["p_strong"] == 0.3
    assert first["stream"] is False
    assert "prompt, weak and strong are null" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.partial"))
