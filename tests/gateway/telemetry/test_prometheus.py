"""GatewayMetrics against synthetic records: names, labels, values, bounds and exposition."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from gateway.telemetry.prometheus import OTHER, GatewayMetrics, metrics_router, request_status
from tests.support.paths import REPO
from tests.support.records import make_record


def sample(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_one_answered_request_fills_every_family() -> None:
    m = GatewayMetrics()
    m.request_started()
    assert sample(m, "tiergate_requests_in_flight") == 1
    m.record(make_record(ttft_s=0.05, stream=True))
    assert sample(m, "tiergate_requests_in_flight") == 0
    route = {"policy": "balanced", "tier": "small", "deployment": "smol"}
    assert sample(m, "tiergate_requests_total", **route, status="ok") == 1
    assert (
        sample(
            m,
            "tiergate_route_decisions_total",
            policy="balanced",
            intended_tier="small",
            served_tier="small",
            reason="score",
            category="none",
        )
        == 1
    )
    assert sample(m, "tiergate_prompt_tokens_total", deployment="smol") == 11
    assert sample(m, "tiergate_completion_tokens_total", deployment="smol") == 7
    assert sample(m, "tiergate_cost_usd_total", **route) == 0.0001
    assert sample(m, "tiergate_counterfactual_cost_usd_total", **route) == 0.001
    tier = {"tier": "small", "deployment": "smol"}
    assert sample(m, "tiergate_request_latency_seconds_count", **tier) == 1
    assert sample(m, "tiergate_request_latency_seconds_sum", **tier) == 0.2
    assert sample(m, "tiergate_ttft_seconds_count", **tier) == 1
    assert sample(m, "tiergate_upstream_latency_seconds_count", deployment="smol") == 1
    assert sample(m, "tiergate_gateway_overhead_seconds_count") == 1
    assert sample(m, "tiergate_router_decision_seconds_count") == 1
    assert sample(m, "tiergate_router_score_bucket", policy="balanced", le="0.3") == 1
    assert sample(m, "tiergate_router_score_bucket", policy="balanced", le="0.25") == 0


def test_fallback_error_abort_and_partial_are_told_apart() -> None:
    m = GatewayMetrics()
    m.record(
        make_record(
            intended_tier="small", served_tier="large", deployment="big", fallback_reason="timeout"
        )
    )
    m.record(
        make_record(
            served_tier=None,
            deployment="smol",
            status_code=502,
            error_kind="server_error",
            prompt_tokens=0,
            completion_tokens=0,
        )
    )
    m.record(make_record(stream=True, client_aborted=True, status_code=499, completion_tokens=3))
    m.record(make_record(stream=True, partial=True, error_kind="protocol"))
    m.record(make_record(status_code=400, error_kind="invalid_request", served_tier=None))
    assert sample(m, "tiergate_fallbacks_total", reason="timeout") == 1
    assert (
        sample(
            m,
            "tiergate_route_decisions_total",
            policy="balanced",
            intended_tier="small",
            served_tier="large",
            reason="score",
            category="none",
        )
        == 1
    )
    assert sample(m, "tiergate_upstream_errors_total", deployment="smol", kind="server_error") == 1
    assert sample(m, "tiergate_upstream_errors_total", deployment="smol", kind="protocol") == 1
    # A client's own mistake is not an upstream error, and neither is a client leaving.
    assert (
        sample(m, "tiergate_upstream_errors_total", deployment="smol", kind="invalid_request") == 0
    )
    statuses = {
        s.labels["status"]: s.value
        for f in m.registry.collect()
        if f.name == "tiergate_requests"
        for s in f.samples
        if s.name == "tiergate_requests_total"
    }
    assert statuses == {"ok": 1, "error": 1, "aborted": 1, "partial": 1, "client_error": 1}
    # What an aborted stream generated is still counted.
    # smol: the aborted stream (3), the partial one (7) and the refused request (7).
    assert sample(m, "tiergate_completion_tokens_total", deployment="smol") == 3 + 7 + 7


def test_request_status_precedence() -> None:
    assert request_status(make_record()) == "ok"
    assert request_status(make_record(client_aborted=True, partial=True)) == "aborted"
    assert request_status(make_record(status_code=504, partial=True)) == "error"
    assert request_status(make_record(status_code=429)) == "client_error"
    assert request_status(make_record(partial=True)) == "partial"


def test_missing_values_are_none_and_direct_requests_are_counted() -> None:
    m = GatewayMetrics()
    m.record(
        make_record(
            policy=None, p_strong=None, decision_reason=None, intended_tier=None, router_s=None
        )
    )
    assert (
        sample(
            m,
            "tiergate_requests_total",
            policy="none",
            tier="small",
            deployment="smol",
            status="ok",
        )
        == 1
    )
    assert sample(m, "tiergate_router_decision_seconds_count") == 0


def test_label_values_are_capped() -> None:
    m = GatewayMetrics(max_label_values=3)
    for i in range(10):
        m.record(make_record(fallback_reason=f"upstream said {i}"))
    reasons = {
        s.labels["reason"]
        for f in m.registry.collect()
        if f.name == "tiergate_fallbacks"
        for s in f.samples
        if s.name.endswith("_total")
    }
    assert reasons == {"upstream said 0", "upstream said 1", "upstream said 2", OTHER}
    assert sample(m, "tiergate_fallbacks_total", reason=OTHER) == 7


def test_negative_costs_are_clamped_not_raised() -> None:
    m = GatewayMetrics()
    m.record(make_record(cost_usd=-1.0))
    assert (
        sample(m, "tiergate_cost_usd_total", policy="balanced", tier="small", deployment="smol")
        == 0
    )


def test_apps_have_separate_registries() -> None:
    a, b = GatewayMetrics(), GatewayMetrics()
    a.record(make_record())
    assert (
        sample(
            b,
            "tiergate_requests_total",
            policy="balanced",
            tier="small",
            deployment="smol",
            status="ok",
        )
        == 0
    )


async def test_metrics_route_serves_the_text_format() -> None:
    m = GatewayMetrics()
    m.record(make_record())
    app = FastAPI()
    app.include_router(metrics_router(m))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(response.text)}
    assert all(n.startswith("tiergate_") for n in names)
    assert "tiergate_requests" in names
    assert "/metrics" not in app.openapi()["paths"]


def test_multiprocess_mode_merges_workers(tmp_path: Path) -> None:
    """Two 'workers' (processes) write to one PROMETHEUS_MULTIPROC_DIR; a third renders the sum."""
    worker = textwrap.dedent(
        """
        from gateway.telemetry.prometheus import GatewayMetrics
        from tests.support.records import make_record
        m = GatewayMetrics()
        m.request_started()
        m.record(make_record())
        m.request_started()
        """
    )
    render = (
        "from gateway.telemetry.prometheus import GatewayMetrics; "
        "print(GatewayMetrics().render().decode())"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, cwd=REPO, check=True)
    out = subprocess.run(
        [sys.executable, "-c", render],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    families = {f.name: f for f in text_string_to_metric_families(out)}
    requests = sum(
        s.value
        for s in families["tiergate_requests"].samples
        if s.name == "tiergate_requests_total"
    )
    assert requests == 2
    tokens = [
        s.value
        for s in families["tiergate_prompt_tokens"].samples
        if s.name == "tiergate_prompt_tokens_total"
    ]
    assert tokens == [22]
