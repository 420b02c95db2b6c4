"""Every dashboard query, evaluated by a real Prometheus scraping metrics fed synthetic records.

This proves the dashboard against the metrics module alone; `test_gateway_prometheus.py` does the
same with real traffic through the gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from gateway.telemetry.prometheus import GatewayMetrics, metrics_router
from tests.support.dashboard import QUERIES, reliability_collector
from tests.support.prometheus import PrometheusServer, has_finite_value, scoped, substitute
from tests.support.records import make_record
from tests.support.upstream import serve_in_thread

pytestmark = pytest.mark.prometheus


def traffic(metrics: GatewayMetrics) -> None:
    """Both tiers, streams, a fallback, an upstream failure, an abort, a partial stream."""
    for i in range(20):
        metrics.request_started()
        large = i % 4 == 0
        metrics.record(
            make_record(
                p_strong=i / 20,
                intended_tier="large" if large else "small",
                served_tier="large" if large else "small",
                deployment="big" if large else "smol",
                cost_usd=0.001 if large else 0.0001,
                stream=i % 2 == 0,
                ttft_s=0.05 if i % 2 == 0 else None,
            )
        )
    metrics.record(make_record(served_tier="large", deployment="big", fallback_reason="timeout"))
    metrics.record(make_record(served_tier=None, status_code=502, error_kind="server_error"))
    metrics.record(make_record(stream=True, client_aborted=True, status_code=499))
    metrics.record(make_record(stream=True, partial=True, error_kind="protocol", ttft_s=0.1))
    metrics.count_log_rows(24)


def equals(n: float) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda result: bool(result) and float(result[0]["value"][1]) == n


@pytest.fixture(scope="module")
def scraped(prometheus: PrometheusServer) -> Iterator[PrometheusServer]:
    metrics = GatewayMetrics()
    metrics.registry.register(reliability_collector(("smol", "big")))
    app = FastAPI()
    app.include_router(metrics_router(metrics))
    server, thread, sock = serve_in_thread(app)
    try:
        metrics.preinitialize(
            (policy, tier, deployment)
            for policy in ("balanced", None)
            for tier, deployment in (("small", "smol"), ("large", "big"))
        )
        prometheus.add_target("synthetic", f"127.0.0.1:{sock.getsockname()[1]}")
        # Two waves, a scrape apart: series that are not pre-created (fallback reasons, error
        # kinds) are born in the first, and rate() sees them grow in the second.
        for wave in (1, 2):
            traffic(metrics)
            prometheus.wait_for('sum(tiergate_requests_total{job="synthetic"})', equals(24 * wave))
        yield prometheus
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize("expr", [e for _, e in QUERIES], ids=[i for i, _ in QUERIES])
def test_dashboard_query_returns_data(scraped: PrometheusServer, expr: str) -> None:
    scraped.wait_for(scoped(substitute(expr), "synthetic"), has_finite_value, timeout=15)
