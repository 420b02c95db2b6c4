"""Real traffic through the gateway to fake upstreams, scraped by a real Prometheus.

One gateway per module, in front of two fake OpenAI upstreams over loopback: JSON and streamed
answers on both tiers, a direct request, a legacy completion, a fallback, a request every
deployment fails, a stream the upstream cuts, a stream the client abandons, an escalation, a kept
answer shadow-judged and given feedback, a shadow sample over its budget. Then: every dashboard
query returns data, and Prometheus's counters equal the request log's sums exactly.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from gateway.telemetry.prometheus import request_status
from gateway.telemetry.record import RequestRecord
from gateway.telemetry.requestlog import COLUMN_NAMES, DB_FILENAME
from tests.support.dashboard import QUERIES
from tests.support.gateway import RunningGateway, start_gateway, two_tier_config
from tests.support.prometheus import PrometheusServer, has_finite_value, scoped, substitute
from tests.support.records import row_count, wait_until
from tests.support.upstream import Cut, Endless, Fail, FakeUpstream, Reply

pytestmark = pytest.mark.prometheus

EASY: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello."}]
HARD: list[ChatCompletionMessageParam] = [{"role": "user", "content": "HARD: prove the theorem."}]
JOB = "gateway"


@dataclass
class Run:
    gateway: RunningGateway
    prometheus: PrometheusServer
    db: Path
    sent: int


def log_records(db: Path) -> list[RequestRecord]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        rows = list(conn.execute("SELECT * FROM requests"))
    finally:
        conn.close()
    flags = ("stream", "tokens_estimated", "client_aborted", "partial")
    return [RequestRecord(**_fields(r, flags)) for r in rows]


def _fields(row: sqlite3.Row, flags: tuple[str, ...]) -> dict[str, Any]:
    return {k: (bool(row[k]) if k in flags else row[k]) for k in COLUMN_NAMES}


def abandon_stream(gateway: RunningGateway, chunks: int = 3) -> None:
    """Read a few SSE events of an endless stream, then hang up like a closed browser tab."""
    body = {"model": "auto", "messages": EASY, "stream": True}
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{gateway.url}/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        seen = 0
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen += 1
                if seen == chunks:
                    break


def send_traffic(gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream) -> int:
    """Every kind of request the dashboard shows; returns how many the gateway accepted."""
    client = gateway.sdk()
    sent = 0
    for messages in (EASY, EASY, EASY, HARD, HARD):
        client.chat.completions.create(model="auto", messages=messages)
        sent += 1
    for messages, usage in ((EASY, True), (EASY, False), (HARD, True)):
        stream = client.chat.completions.create(
            model="auto",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True} if usage else None,
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        sent += 1
    client.chat.completions.create(model="small-a", messages=EASY)
    client.chat.completions.create(model="auto:cost-saver", messages=HARD)
    client.completions.create(model="auto", prompt="Say hello.")
    client.chat.completions.create(
        model="auto", messages=EASY, extra_headers={"x-tiergate-tier": "large"}
    )
    # A model that does not exist: refused with 404, still an accepted request with a row.
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=EASY)
    sent += 5
    # The small deployment fails before its first byte: the large one answers.
    small.enqueue(Fail(500))
    fallback = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=EASY,
    )
    assert fallback.headers["x-tiergate-route"] == "large"
    sent += 1
    # Every deployment fails: 502, still one accepted request.
    small.enqueue(Fail(500))
    large.enqueue(Fail(503))
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="auto", messages=EASY)
    assert failed.value.status_code == 502
    sent += 1
    # The upstream cuts the stream after two chunks: a partial answer.
    # The gateway ends it with an SSE error event, which the OpenAI client raises.
    small.enqueue(Cut(after=2))
    with pytest.raises(openai.APIError, match="mid-stream"):
        for _ in client.chat.completions.create(
            model="auto",
            messages=EASY,
            stream=True,
        ):
            pass
    sent += 1
    # The client hangs up mid-stream.
    small.enqueue(Endless(interval_s=0.01))
    abandon_stream(gateway)
    sent += 1
    sent += learning_traffic(gateway, client, small)
    client.close()
    return sent


LOOP = "the same words again and again " * 30
LEARNING_SERIES = (
    "tiergate_escalation_judged_total",
    "tiergate_escalations_total",
    "tiergate_shadow_verdicts_total",
    "tiergate_shadow_skipped_total",
    "tiergate_feedback_total",
)


def learning_config(small: FakeUpstream, large: FakeUpstream, judge: FakeUpstream) -> Any:
    """Two tiers, a judge, a policy that escalates and shadows, one whose shadow budget is nil."""
    config = two_tier_config(small.url, large.url)
    config["deployments"]["judge-a"] = {"model": "openai/judge-model", "api_base": judge.url}
    shadow = {"fraction": 1.0, "judge": "judge-a", "daily_budget_usd": 5.0}
    config["policies"] = {
        "balanced": {"threshold": 0.5},
        "verified": {
            "threshold": 0.5,
            "escalate": {"to": "large", "checks": ["degenerate"]},
            "shadow": shadow,
        },
        "stingy": {"threshold": 0.5, "shadow": {**shadow, "daily_budget_usd": 1e-9}},
    }
    return config


def learning_traffic(gateway: RunningGateway, client: openai.OpenAI, small: FakeUpstream) -> int:
    """An escalated answer, a kept one (shadow-judged, then scored by feedback), and a shadow
    sample its budget cannot pay for."""
    small.enqueue(Reply(text=LOOP))
    escalated = client.chat.completions.with_raw_response.create(
        model="auto:verified", messages=EASY
    )
    assert escalated.headers["x-tiergate-escalated"] == "degenerate"
    kept = client.chat.completions.with_raw_response.create(model="auto:verified", messages=EASY)
    assert "x-tiergate-escalated" not in kept.headers
    client.chat.completions.create(model="auto:stingy", messages=EASY)
    scored = httpx.post(
        f"{gateway.url}/feedback",
        json={"request_id": kept.headers["x-request-id"], "score": "good"},
        timeout=10,
    )
    assert scored.status_code == 200, scored.text
    return 3


@pytest.fixture(scope="module")
def run(prometheus: PrometheusServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    small = FakeUpstream("small-model").start()
    large = FakeUpstream("large-model").start()
    judge = FakeUpstream("judge-model", default=Reply(text="A")).start()
    tmp = tmp_path_factory.mktemp("gateway")
    gateway = start_gateway(tmp, learning_config(small, large, judge))
    db = tmp / "logs" / DB_FILENAME
    try:
        prometheus.add_target(JOB, gateway.root.removeprefix("http://"))
        sent = send_traffic(gateway, small, large)
        # The learning counters are born with their first verdict, escalation and score; rate()
        # sees them only once a scrape has them and a later one sees them grow: a second wave.
        for born in LEARNING_SERIES:
            prometheus.wait_for(f'sum({born}{{job="{JOB}"}})')
        with openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0) as client:
            sent += learning_traffic(gateway, client, small)
        # The aborted request is recorded when the gateway notices the hang-up: wait for it.
        prometheus.wait_for(
            f'sum(tiergate_requests_total{{job="{JOB}"}})',
            lambda r: bool(r) and float(r[0]["value"][1]) == sent,
        )
        wait_until(lambda: row_count(db) == sent, 10, f"request log never reached {sent} rows")
        # The log counts its rows once written (after a linger): wait for the scrape that saw them.
        prometheus.wait_for(
            f'sum(tiergate_request_log_rows_total{{job="{JOB}"}})',
            lambda r: bool(r) and float(r[0]["value"][1]) == sent,
        )
        yield Run(gateway, prometheus, db, sent)
    finally:
        gateway.stop()
        small.stop()
        large.stop()
        judge.stop()


def test_counters_agree_with_the_request_log(run: Run) -> None:
    records = log_records(run.db)
    assert len(records) == run.sent

    def prom(expr: str) -> float:
        return run.prometheus.value(f'sum({expr}{{job="{JOB}"}})')

    assert prom("tiergate_requests_total") == len(records)
    assert prom("tiergate_prompt_tokens_total") == sum(r.prompt_tokens for r in records)
    assert prom("tiergate_completion_tokens_total") == sum(r.completion_tokens for r in records)
    cost = sum(r.cost_usd for r in records)
    counterfactual = sum(r.counterfactual_cost_usd for r in records)
    assert cost > 0 and counterfactual > cost
    # Floating-point sums in another order: equal to the last few bits.
    assert prom("tiergate_cost_usd_total") == pytest.approx(cost, rel=1e-12, abs=1e-15)
    assert prom("tiergate_counterfactual_cost_usd_total") == pytest.approx(
        counterfactual, rel=1e-12, abs=1e-15
    )
    # And route by route, outcome by outcome.
    by_route = Counter(
        (r.policy or "none", r.served_tier or "none", r.deployment or "none", request_status(r))
        for r in records
    )
    series = run.prometheus.query(
        f'sum by (policy, tier, deployment, status) (tiergate_requests_total{{job="{JOB}"}}) > 0'
    )
    from_prometheus = {
        (
            s["metric"]["policy"],
            s["metric"]["tier"],
            s["metric"]["deployment"],
            s["metric"]["status"],
        ): int(float(s["value"][1]))
        for s in series
    }
    assert from_prometheus == dict(by_route)
    assert prom("tiergate_request_log_rows_total") == len(records)
    assert prom("tiergate_request_log_dropped_total") == 0
    assert prom("tiergate_requests_in_flight") == 0


def test_streamed_and_aborted_requests_are_counted_and_priced(run: Run) -> None:
    records = log_records(run.db)
    streamed = [r for r in records if r.stream]
    assert len(streamed) == 5
    for rec in streamed:
        assert rec.completion_tokens > 0, rec
        assert rec.cost_usd > 0, rec
        assert rec.ttft_s is not None and rec.ttft_s <= rec.latency_s
    (aborted,) = [r for r in records if r.client_aborted]
    assert aborted.status_code == 499 and aborted.served_tier == "small"
    (cut,) = [r for r in records if r.partial and not r.client_aborted]
    assert cut.error_kind is not None
    (fallback,) = [r for r in records if r.fallback_reason and r.status_code == 200]
    assert fallback.served_tier == "large" and fallback.intended_tier == "small"
    (failed,) = [r for r in records if r.status_code == 502]
    assert failed.cost_usd == 0
    (forced,) = [r for r in records if r.decision_reason == "header"]
    assert forced.served_tier == "large"
    (refused,) = [r for r in records if r.status_code == 404]
    assert refused.served_tier is None and request_status(refused) == "client_error"
    assert (
        run.prometheus.value(f'sum(tiergate_requests_total{{job="{JOB}", status="aborted"}})') == 1
    )
    assert (
        run.prometheus.value(f'sum(tiergate_fallbacks_total{{job="{JOB}", reason="server_error"}})')
        == 2
    )


@pytest.mark.parametrize("expr", [e for _, e in QUERIES], ids=[i for i, _ in QUERIES])
def test_dashboard_query_returns_data_from_gateway_traffic(run: Run, expr: str) -> None:
    run.prometheus.wait_for(scoped(substitute(expr), JOB), has_finite_value, timeout=15)
