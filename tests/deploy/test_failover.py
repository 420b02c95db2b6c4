"""The failover proof: three real `tiergate serve` replicas behind a real HAProxy, one Redis, one
Postgres, a real Prometheus scraping all three; under mixed JSON and streamed load one replica is
SIGKILLed and started again, another SIGTERMed (drained: exit code 0, none of its rows lost). The
scenario, the load driver and the accounting live in bench/ (bench/failover.py runs them longer and
writes bench/RESULTS.md); this test runs them for ~35 s and asserts what issue 16 asks:

- JSON requests: no failure a client can see; streams: those on the killed replica end with an
  error the client sees, none hangs, and every other stream ends whole;
- request-log rows in Postgres = requests the replicas accepted, except the SIGKILLed replica's
  unflushed rows, which are counted and may only be its last moments' requests;
- one key's rpm and another's budget hold across the three replicas;
- Prometheus scrapes all three and the dashboard's queries give the fleet's totals.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.failover import DRAINED, KILLED, Figures, Plan, analyze, read_rows, render, run
from bench.fleet import BUDGET_USD, RPM_LIMIT, Fleet, read_haproxy_log
from tests.support.dashboard import QUERIES
from tests.support.prometheus import PrometheusServer, scoped, substitute

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.prometheus, pytest.mark.haproxy]

PLAN = Plan(duration_s=35.0, concurrency=32, kill_at_s=6.0, restart_at_s=8.0, term_at_s=20.0)
JOB = "fleet"
LINGER_S = 0.25


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str) -> Iterator[Fleet]:
    for binary in ("haproxy", "redis-server"):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is not installed: run `bash deploy/local/test-prereqs.sh`")
    fleet = Fleet(tmp_path, postgres_url, linger_s=LINGER_S)
    try:
        yield fleet.start()
    finally:
        fleet.stop()


def test_three_replicas_lose_nothing_when_one_is_killed_and_one_drained(
    fleet: Fleet, postgres_url: str, prometheus: PrometheusServer
) -> None:
    prometheus.add_targets(JOB, [r.address for r in fleet.replicas])
    outcomes, events = asyncio.run(run(fleet, PLAN))
    time.sleep(2.5)  # the last rows' linger, and two scrapes after the last request
    entries = read_haproxy_log(fleet.haproxy_log)
    rows = read_rows(postgres_url)
    fig = analyze(outcomes, entries, rows, fleet, events)
    print(
        render(
            fig,
            PLAN,
            events,
            {"command": "test", "elapsed_s": 0, "load_avg_end": 0, "haproxy": "-", "postgres": "-"},
        )
    )
    _assert_clients(fig)
    _assert_rows(fig)
    _assert_limits(fig)
    # The drain (issue 13): every request in flight finished, every row written, exit code 0.
    assert events.term_exit_code == 0, events.term_exit_code
    _assert_prometheus(prometheus, fig)
    _assert_dashboard(prometheus, rows)


def _results(fig: Figures, prefix: str) -> Counter[str]:
    return Counter({k[len(prefix) :]: v for k, v in fig.results.items() if k.startswith(prefix)})


def _assert_clients(fig: Figures) -> None:
    assert fig.timeouts == 0, f"{fig.timeouts} requests hung: {fig.results}"
    assert _results(fig, "load/json/") == Counter({"ok": fig.sent["load/json"]}), fig.results
    streams = _results(fig, "load/stream/")
    assert set(streams) <= {"ok", "cut"}, streams
    assert streams["ok"] + streams["cut"] == fig.sent["load/stream"]
    # Only the SIGKILLed replica's first life cuts streams (the drained one finishes them).
    assert set(fig.cut_streams.values()) <= {f"{KILLED}#0"}, fig.cut_streams
    for key in ("rpm", "budget"):
        seen = _results(fig, f"{key}/json/")
        assert set(seen) <= {"ok", "http_error/429"}, (key, seen)
    assert fig.served[f"{KILLED}#1"] > 0, f"the restarted replica served nothing: {fig.served}"


def _assert_rows(fig: Figures) -> None:
    # The SIGTERMed replica drained: it served requests, and every one it accepted has its row.
    assert fig.served[f"{DRAINED}#0"] > 0, f"the drained replica served nothing: {fig.served}"
    drained = {rid: w for rid, w in fig.missing.items() if w.startswith(f"{DRAINED}#")}
    assert drained == {}, f"rows lost by the drained replica: {drained}"
    elsewhere = {rid: w for rid, w in fig.missing.items() if w != f"{KILLED}#0"}
    assert elsewhere == {}, f"rows missing from replicas that were not killed: {elsewhere}"
    assert fig.unknown_rows == 0
    # What the SIGKILLed replica lost is its last moments: rows still queued (linger) or requests
    # in flight when it died, never older ones.
    assert all(age < LINGER_S + 1.0 for age in fig.missing_age_s), sorted(fig.missing_age_s)
    assert fig.rows == fig.rows_expected - len(fig.missing) + fig.duplicates


def _assert_limits(fig: Figures) -> None:
    assert fig.rpm_per_minute, "the rpm key was never answered"
    assert max(fig.rpm_per_minute.values()) <= RPM_LIMIT, fig.rpm_per_minute
    assert _results(fig, "rpm/json/")["http_error/429"] > 0, "the rpm key never hit its limit"
    assert fig.budget_spent_usd <= BUDGET_USD, fig.budget_spent_usd
    assert _results(fig, "budget/json/")["http_error/429"] > 0, "the budget was never reached"


def _assert_prometheus(prometheus: PrometheusServer, fig: Figures) -> None:
    scraped = prometheus.value(f'count(max_over_time(up{{job="{JOB}"}}[10m]) == 1)')
    assert scraped == 3, f"Prometheus scraped {scraped} replicas"
    # The dashboard's own expressions, over all replicas of the job: the fleet's totals.
    total = prometheus.value(
        substitute(f'sum(increase(tiergate_requests_total{{job="{JOB}"}}[$__range]))')
    )
    per_instance = [
        float(s["value"][1])
        for s in prometheus.query(
            substitute(
                f'sum by (instance) (increase(tiergate_requests_total{{job="{JOB}"}}[$__range]))'
            )
        )
    ]
    assert len(per_instance) == 3
    # Rows = requests the replicas finished; Prometheus misses what the killed replica did after
    # its last scrape (at most a second), and increase() extrapolates a little at the range's end.
    assert fig.rows * 0.95 - 2 <= total <= fig.rows * 1.03 + 2, (total, fig.rows)
    assert total > 1.5 * max(per_instance), (total, per_instance)


def _panel(title: str) -> str:
    (expr,) = [e for name, e in QUERIES if name == title]
    return scoped(substitute(expr), JOB)


def _assert_dashboard(prometheus: PrometheusServer, rows: list[dict[str, Any]]) -> None:
    """Two of the dashboard's panels, as Grafana would ask them, against the fleet's own rows."""
    served = [r for r in rows if r["served_tier"] is not None]
    small_share = sum(r["served_tier"] == "small" for r in served) / len(served)
    share = prometheus.value(_panel("Share of traffic on the small tier [A]"))
    assert abs(share - small_share) < 0.03, (share, small_share)
    saved = sum((r["counterfactual_cost_usd"] or 0.0) - (r["cost_usd"] or 0.0) for r in rows)
    panel = prometheus.value(_panel("Saved over the range (USD) [A]"))
    assert saved * 0.9 <= panel <= saved * 1.1, (panel, saved)
