"""Circuit breakers: the state machine with a fake clock, then a dead deployment skipped over HTTP
and reported in `/status` and `/metrics`."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from gateway.reliability.breaker import Breaker
from gateway.upstream.base import UpstreamError
from tests.support.gateway import chat, config, start
from tests.support.upstream import Fail, FakeUpstream, Reply


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


BOOM = UpstreamError("server_error", "boom", status=500)


def test_opens_after_n_failures_within_the_window() -> None:
    clock = Clock()
    b = Breaker(failures=3, window_s=10, cooldown_s=5, clock=clock)
    b.failure(BOOM)
    b.failure(BOOM)
    assert b.state == "closed" and b.allow()
    b.failure(BOOM)
    assert b.state == "open" and not b.allow()
    assert b.retry_after() == 5 and b.opened == 1


def test_failures_spread_wider_than_the_window_do_not_open() -> None:
    clock = Clock()
    b = Breaker(failures=3, window_s=10, cooldown_s=5, clock=clock)
    for _ in range(6):
        b.failure(BOOM)
        clock.now += 6
    assert b.state == "closed"


def test_client_errors_and_rate_limits_do_not_count() -> None:
    b = Breaker(failures=1, window_s=10, cooldown_s=5, clock=Clock())
    b.failure(UpstreamError("client_error", "bad request", status=400))
    b.failure(UpstreamError("rate_limited", "slow down", status=429))
    assert b.state == "closed"


def test_half_open_lets_one_probe_through_and_its_outcome_decides() -> None:
    clock = Clock()
    b = Breaker(failures=1, window_s=10, cooldown_s=5, clock=clock)
    b.failure(BOOM)
    clock.now += 5
    assert b.state == "half_open"
    assert b.allow() and not b.allow(), "exactly one probe"
    b.failure(BOOM)
    assert b.state == "open" and b.opened == 2
    clock.now += 5
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.allow() and b.allow()


def test_a_probe_that_never_reports_back_is_forgotten_after_a_cooldown() -> None:
    clock = Clock()
    b = Breaker(failures=1, window_s=10, cooldown_s=5, clock=clock)
    b.failure(BOOM)
    clock.now += 5
    assert b.allow() and not b.allow()
    clock.now += 5
    assert b.allow()


def test_a_failing_deployment_is_skipped_then_probed_back(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    breaker = {"failures": 2, "window_s": 30, "cooldown_s": 3.0}
    gw = start(tmp_path, config(small.url, large.url, breaker=breaker))
    try:
        small.default = Fail(500)
        for _ in range(2):
            assert gw.post(chat()).headers["x-tiergate-fallback"] == "small-a=server_error"
        r = gw.post(chat())
        assert r.status_code == 200
        assert r.headers["x-tiergate-fallback"] == "small-a=circuit_open"
        assert len(small.history) == 2, "an open circuit sends nothing upstream"
        status = httpx.get(gw.root + "/status").json()
        assert status["tiers"]["small"]["deployments"]["small-a"]["circuit"] == "open"
        assert status["tiers"]["small"]["available"] is False
        metrics = gw.metrics()
        assert 'tiergate_circuit_state{deployment="small-a",state="open"} 1.0' in metrics
        assert 'tiergate_circuit_opened_total{deployment="small-a"} 1.0' in metrics
        # After the cooldown one probe goes through; the deployment has recovered.
        small.default = Reply()
        time.sleep(3.1)
        r = gw.post(chat())
        assert r.headers["x-tiergate-deployment"] == "small-a"
        assert "x-tiergate-fallback" not in r.headers
        assert 'deployment="small-a",state="closed"} 1.0' in gw.metrics()
    finally:
        gw.stop()


def test_open_circuits_everywhere_are_503_with_retry_after(tmp_path: Path) -> None:
    breaker = {"failures": 1, "window_s": 30, "cooldown_s": 20}
    gw = start(tmp_path, config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", breaker=breaker))
    try:
        assert gw.post(chat()).status_code == 502
        r = gw.post(chat())
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "no_deployment_available"
        assert "circuit_open" in r.json()["error"]["message"]
        assert 15 <= int(r.headers["retry-after"]) <= 20
        assert gw.records.last.status_code == 503
    finally:
        gw.stop()
