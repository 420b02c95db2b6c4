"""Routing people can steer, over real HTTP: three named tiers, operator routes, personal data kept
local or redacted, and the headers, records and metrics that say what happened.

The gateway runs on loopback in front of three fake upstreams (`small` marked local, `coder`,
`large`) with the keyword scorer ("HARD" scores 0.9) and the keyword classifier (a route's word
claims it; "maybe <word>" only with a probability below the confidence).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateway import Gateway, chat, sse_events, start, two_tier_config
from tests.support.scoring import KeywordClassifier
from tests.support.upstream import Fail, FakeUpstream

EXAMPLES = [f"example {i}" for i in range(5)]
EMAIL = "jane.doe@example.com"


@pytest.fixture
def coder() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream("coder-model").start()
    yield upstream
    upstream.stop()


def three_tiers(
    small: FakeUpstream, coder: FakeUpstream, large: FakeUpstream, *, local: bool = True
) -> dict[str, Any]:
    cfg = two_tier_config(small.url, large.url)
    cfg["deployments"]["small-a"]["local"] = local
    cfg["deployments"]["coder-a"] = {"model": "openai/coder-model", "api_base": coder.url}
    cfg["tiers"] = {
        "small": {"deployments": ["small-a"]},
        "coder": {"deployments": ["coder-a"]},
        "large": {"deployments": ["large-a"]},
    }
    cfg["routes"] = {
        "billing": {"tier": "small", "examples": EXAMPLES},
        "code": {"tier": "coder", "examples": EXAMPLES},
        "legal": {"tier": "most_capable", "examples": EXAMPLES},
    }
    cfg["policies"] = {
        "balanced": {"threshold": 0.5},
        "private": {"threshold": 0.5, "pii": "keep_local"},
        "scrub": {"threshold": 0.5, "pii": "redact"},
    }
    return cfg


def classifier() -> KeywordClassifier:
    return KeywordClassifier({"billing": "invoice", "code": "python", "legal": "contract"})


@pytest.fixture
def gw(
    tmp_path: Path, small: FakeUpstream, coder: FakeUpstream, large: FakeUpstream
) -> Iterator[Gateway]:
    gateway = start(tmp_path, three_tiers(small, coder, large), classifier=classifier())
    yield gateway
    gateway.stop()


def routed(r: httpx.Response) -> tuple[str, str, str | None]:
    assert r.status_code == 200, r.text
    return (
        r.headers["x-tiergate-route"],
        r.headers["x-tiergate-reason"],
        r.headers.get("x-tiergate-category"),
    )


def test_routes_reach_each_tier_and_the_score_decides_the_rest(gw: Gateway) -> None:
    assert routed(gw.post(chat("where is my invoice? HARD"))) == (
        "small",
        "route:billing",
        "billing",
    )
    assert routed(gw.post(chat("fix my python loop"))) == ("coder", "route:code", "code")
    assert routed(gw.post(chat("read this contract"))) == ("large", "route:legal", "legal")
    assert routed(gw.post(chat("hello there"))) == ("small", "score", "none")
    assert routed(gw.post(chat("HARD: a proof"))) == ("large", "score", "none")
    # Below the confidence, the route is not named and the score decides.
    assert routed(gw.post(chat("maybe python, HARD"))) == ("large", "score", "none")
    records = gw.records.wait(6)
    assert [r.category for r in records] == ["billing", "code", "legal", "none", "none", "none"]
    assert records[5].category_probability == pytest.approx(0.4)
    assert [r.served_tier for r in records[:3]] == ["small", "coder", "large"]


def test_a_failed_tier_falls_back_in_the_configs_order(gw: Gateway, coder: FakeUpstream) -> None:
    coder.enqueue(Fail(500))
    r = gw.post(chat("fix my python loop"))
    assert r.headers["x-tiergate-fallback"] == "coder-a=server_error"
    assert (r.headers["x-tiergate-route"], r.headers["x-tiergate-deployment"]) == (
        "small",
        "small-a",
    )
    assert r.headers["x-tiergate-reason"] == "route:code"


def test_a_client_may_force_any_named_tier(gw: Gateway) -> None:
    r = gw.post(chat("hello"), headers={"x-tiergate-tier": "coder"})
    assert routed(r)[:2] == ("coder", "header")
    bad = gw.post(chat("hello"), headers={"x-tiergate-tier": "medium"})
    assert bad.status_code == 400
    assert "['small', 'coder', 'large']" in bad.json()["error"]["message"]


def test_keep_local_serves_personal_data_from_local_deployments_only(
    gw: Gateway, small: FakeUpstream, coder: FakeUpstream, large: FakeUpstream
) -> None:
    text = f"HARD python: mail {EMAIL} the contract"
    r = gw.post(chat(text, model="auto:private"), headers={"x-tiergate-tier": "large"})
    assert routed(r) == ("small", "pii", "code")
    assert small.history[-1].body["messages"][0]["content"] == text  # local: unredacted
    # The local deployment failing is an error, never a send to another tier.
    small.enqueue(Fail(500))
    failed = gw.post(chat(text, model="auto:private"))
    assert failed.status_code == 502 and failed.headers["x-tiergate-reason"] == "pii"
    assert coder.history == [] and large.history == []
    # Without personal data the same policy routes as usual.
    assert routed(gw.post(chat("HARD python", model="auto:private")))[0] == "coder"
    assert gw.records.wait(3)[0].pii == "email"


def test_keep_local_without_a_local_tier_is_refused_before_anything_is_sent(
    tmp_path: Path, small: FakeUpstream, coder: FakeUpstream, large: FakeUpstream
) -> None:
    cfg = three_tiers(small, coder, large, local=False)
    gateway = start(tmp_path, cfg, classifier=classifier())
    try:
        r = gateway.post(chat(f"call me on +44 20 7946 0958 or {EMAIL}", model="auto:private"))
        rec = gateway.records.wait(1)[0]
    finally:
        gateway.stop()
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "pii_no_local_tier" and error["param"] == "messages"
    assert "personal data (email, phone)" in error["message"]
    assert "local: true" in error["message"]
    assert r.headers["x-tiergate-reason"] == "pii"
    assert small.history == coder.history == large.history == []
    assert (rec.status_code, rec.decision_reason, rec.pii) == (400, "pii", "email,phone")


def test_redact_replaces_personal_data_before_a_non_local_tier_sees_it(
    gw: Gateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    text = f"HARD: write to {EMAIL} and {EMAIL}, card 4111 1111 1111 1111"
    r = gw.post(chat(text, model="auto:scrub"))
    assert routed(r)[:2] == ("large", "score")
    seen = large.history[-1].body["messages"][0]["content"]
    assert seen == "HARD: write to [EMAIL_1] and [EMAIL_1], card [CARD_1]"
    streamed = gw.post(chat(text, model="auto:scrub", stream=True))
    assert sse_events(streamed)[-1] == "[DONE]"
    assert large.history[-1].body["messages"][0]["content"] == seen
    # A local deployment sees the request as sent.
    easy = f"reply to {EMAIL}"
    assert routed(gw.post(chat(easy, model="auto:scrub")))[0] == "small"
    assert small.history[-1].body["messages"][0]["content"] == easy


def test_metrics_and_the_request_log_carry_the_category_and_pii_kinds(
    tmp_path: Path, small: FakeUpstream, coder: FakeUpstream, large: FakeUpstream
) -> None:
    gateway = start(tmp_path, three_tiers(small, coder, large), classifier=classifier())
    try:
        assert gateway.post(chat("my invoice")).status_code == 200
        assert gateway.post(chat(f"invoice for {EMAIL}", model="auto:scrub")).status_code == 200
        gateway.records.wait(2)
        metrics = gateway.metrics()
    finally:
        gateway.stop()
    assert (
        'tiergate_route_decisions_total{category="billing",intended_tier="small",'
        'policy="balanced",reason="route:billing",served_tier="small"} 1.0'
    ) in metrics
    assert 'tiergate_pii_requests_total{kind="email",policy="scrub"} 1.0' in metrics
    # Every tier and category exists before its first request.
    assert 'intended_tier="coder",policy="balanced",reason="score",served_tier="large"' in metrics
    assert EMAIL not in metrics
    conn = sqlite3.connect(tmp_path / "logs" / "requests.db")
    rows = conn.execute("SELECT category, category_probability, pii FROM requests").fetchall()
    assert rows == [("billing", 0.95, None), ("billing", 0.95, "email")]
    assert not any(EMAIL in str(row) for row in conn.execute("SELECT * FROM requests"))


def test_a_two_tier_config_without_routes_says_why_and_no_category(gw2: Gateway) -> None:
    r = gw2.post(chat("HARD"))
    assert (r.headers["x-tiergate-route"], r.headers["x-tiergate-reason"]) == ("large", "score")
    assert "x-tiergate-category" not in r.headers
    assert gw2.post(chat("hi", model="small-a")).headers["x-tiergate-reason"] == "direct"
    assert gw2.records.wait(2)[0].category is None


@pytest.fixture
def gw2(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> Iterator[Gateway]:
    gateway = start(tmp_path, two_tier_config(small.url, large.url))
    yield gateway
    gateway.stop()


def test_a_responses_request_is_redacted_and_routed_like_chat(
    gw: Gateway, large: FakeUpstream
) -> None:
    body = {"model": "auto:scrub", "input": f"HARD: write to {EMAIL}", "store": False}
    r = httpx.post(gw.url + "/responses", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert (r.headers["x-tiergate-route"], r.headers["x-tiergate-reason"]) == ("large", "score")
    sent = large.history[-1].body["messages"]
    assert sent[-1]["content"] in (
        "HARD: write to [EMAIL_1]",
        [{"type": "text", "text": "HARD: write to [EMAIL_1]"}],
    )
    assert EMAIL not in str(large.history[-1].body)
