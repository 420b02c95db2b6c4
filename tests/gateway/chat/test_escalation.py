"""Escalation mode over real HTTP: fake small and large upstreams, a gateway on loopback.

Each failure the checks know escalates to the large tier and its valid twin does not: invalid
JSON, tool arguments that break the tool's schema, broken Python, a looping answer, a truncated
one. Streaming clients receive the kept answer whole; a held answer gets keep-alive comments; the
verifier's score escalates too; both answers are in the record, the cost and the metrics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.gateway import Gateway, start, two_tier_config
from tests.support.upstream import Fail, FakeUpstream, Reply

ESCALATE = {
    "to": "large",
    "checks": ["json_schema", "tool_arguments", "code_syntax", "degenerate", "truncated"],
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
LOOP = "the cat sat on the mat and " * 40


def escalating_config(small: FakeUpstream, large: FakeUpstream, **escalate: Any) -> dict[str, Any]:
    config = two_tier_config(small.url, large.url)
    for deployment in config["deployments"].values():
        deployment["backend"] = "openai-compatible"
        deployment["capabilities"] = {"tools": True}
    config["policies"] = {"verified": {"threshold": 0.5, "escalate": {**ESCALATE, **escalate}}}
    config["default_policy"] = "verified"
    return config


@pytest.fixture
def gateway(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> Iterator[Gateway]:
    running = start(tmp_path, escalating_config(small, large), escalation_keepalive_s=0.3)
    yield running
    running.stop()


def call(gateway: Gateway, content: str = "Say hello", **extra: Any) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
    return gateway.post(body)


def tool_call(arguments: str, name: str = "get_weather") -> list[dict[str, Any]]:
    return [{"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}]


CASES = {
    "json_schema": (
        {"response_format": {"type": "json_object"}},
        Reply(text='{"answer": 4'),
        Reply(text='{"answer": 4}'),
    ),
    "tool_arguments": (
        {"tools": [WEATHER]},
        Reply(tool_calls=tool_call('{"town": "Paris"}')),
        Reply(tool_calls=tool_call('{"city": "Paris"}')),
    ),
    "code_syntax": (
        {},
        Reply(text="Here:\n```python\ndef f(:\n    return 1\n```"),
        Reply(text="Here:\n```python\ndef f():\n    return 1\n```"),
    ),
    "degenerate": ({}, Reply(text=LOOP), Reply(text="The cat sat on the mat. It purred.")),
    "truncated": (
        {},
        Reply(text="The answer is", finish_reason="length"),
        Reply(text="The answer is 4.", finish_reason="stop"),
    ),
}


@pytest.mark.parametrize("check", list(CASES))
def test_each_failure_escalates_and_its_valid_twin_does_not(
    gateway: Gateway, small: FakeUpstream, large: FakeUpstream, check: str
) -> None:
    extra, broken, valid = CASES[check]
    large.enqueue(Reply(text='{"answer": 4}', prompt_tokens=20, completion_tokens=9))
    small.enqueue(broken)
    r = call(gateway, **extra)
    assert r.status_code == 200, r.text
    assert r.headers["x-tiergate-escalated"] == check
    assert (r.headers["x-tiergate-route"], r.headers["x-tiergate-deployment"]) == (
        "large",
        "large-a",
    )
    assert r.json()["model"] == "large-a"
    assert len(large.history) == 1 and large.history[0].body.get("stream") is not True

    small.enqueue(valid)
    kept = call(gateway, **extra)
    assert kept.status_code == 200 and "x-tiergate-escalated" not in kept.headers
    assert kept.headers["x-tiergate-route"] == "small" and len(large.history) == 1
    escalated, passed = gateway.records.wait(2)
    assert (escalated.escalated, escalated.escalation_tier) == (check, "large")
    assert (escalated.discarded_deployment, escalated.discarded_tier) == ("small-a", "small")
    assert (passed.escalated, passed.escalation_tier, passed.served_tier) == (
        None,
        "large",
        "small",
    )
    assert passed.check_s is not None and passed.discarded_deployment is None


def test_a_client_cap_is_not_a_truncation(gateway: Gateway, small: FakeUpstream) -> None:
    small.enqueue(Reply(text="The answer is", finish_reason="length"))
    r = call(gateway, max_tokens=3)
    assert r.status_code == 200 and "x-tiergate-escalated" not in r.headers


def test_a_cap_the_gateway_injected_for_a_budget_is_not_a_truncation(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    """A key with a budget gets a completion cap the client never set (`plan.completion_cap`):
    an answer that stops there is the gateway's doing, not the model's failure. The same answer
    for a key without limits, under no cap at all, escalates."""
    config = escalating_config(small, large)
    config["keys"] = [
        {"id": "capped", "key_env": "CAPPED", "budget_usd": 10.0},
        {"id": "free", "key_env": "FREE"},
    ]
    gateway = start(tmp_path, config, {"CAPPED": "capped-secret", "FREE": "free-secret"})
    try:
        body = {"model": "auto", "messages": [{"role": "user", "content": "Say hello"}]}
        small.enqueue(Reply(text="The answer is", finish_reason="length"))
        capped = gateway.post(body, key="capped-secret")
        assert capped.status_code == 200, capped.text
        assert "x-tiergate-escalated" not in capped.headers
        sent = small.history[-1].body
        assert sent.get("max_completion_tokens") or sent.get("max_tokens")
        small.enqueue(Reply(text="The answer is", finish_reason="length"))
        free = gateway.post(body, key="free-secret")
        assert free.headers["x-tiergate-escalated"] == "truncated"
    finally:
        gateway.stop()


def test_both_answers_are_paid_for_and_recorded(
    gateway: Gateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Reply(text=LOOP, prompt_tokens=100, completion_tokens=300))
    large.enqueue(Reply(text="Fine.", prompt_tokens=100, completion_tokens=10))
    r = call(gateway)
    (rec,) = gateway.records.wait(1)
    small_cost = 100 * 0.1e-6 + 300 * 0.2e-6
    large_cost = 100 * 5e-6 + 10 * 15e-6
    assert rec.discarded_cost_usd == pytest.approx(small_cost)
    assert rec.cost_usd == pytest.approx(small_cost + large_cost)
    assert float(r.headers["x-tiergate-cost-usd"]) == pytest.approx(small_cost + large_cost)
    assert (rec.discarded_prompt_tokens, rec.discarded_completion_tokens) == (100, 300)
    assert (rec.prompt_tokens, rec.completion_tokens) == (100, 10)
    assert rec.discarded_s is not None and rec.discarded_s <= rec.latency_s
    metrics = gateway.metrics()
    assert (
        'tiergate_escalations_total{category="none",from_tier="small",policy="verified",'
        'reason="degenerate",to_tier="large"} 1.0'
    ) in metrics
    assert 'tiergate_escalation_discarded_tokens_total{kind="completion",tier="small"} 300.0' in (
        metrics
    )


def test_a_request_scored_above_the_threshold_goes_straight_to_large(
    gateway: Gateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    r = call(gateway, "HARD: prove it")
    assert r.headers["x-tiergate-route"] == "large" and not small.history
    (rec,) = gateway.records.wait(1)
    assert rec.escalation_tier is None


def test_a_forced_tier_is_not_second_guessed(gateway: Gateway, small: FakeUpstream) -> None:
    small.enqueue(Reply(text=LOOP))
    r = gateway.post(
        {"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-tiergate-tier": "small"},
    )
    assert r.headers["x-tiergate-route"] == "small" and "x-tiergate-escalated" not in r.headers


def test_when_large_cannot_answer_the_cheaper_answer_is_served(
    gateway: Gateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Reply(text=LOOP))
    large.enqueue(Fail(500))
    r = call(gateway)
    assert r.status_code == 200 and r.headers["x-tiergate-route"] == "small"
    assert r.json()["choices"][0]["message"]["content"] == LOOP
    (rec,) = gateway.records.wait(1)
    assert (rec.escalated, rec.escalation_error) == ("degenerate", "server_error")


# --- streams ---------------------------------------------------------------------------------


def stream(gateway: Gateway, **extra: Any) -> tuple[httpx.Response, list[str], str]:
    body = {"model": "auto", "messages": [{"role": "user", "content": "Say hi"}], "stream": True}
    with httpx.stream(
        "POST", gateway.url + "/chat/completions", json={**body, **extra}, timeout=30
    ) as r:
        raw = r.read().decode()
    events = [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
    return r, events, raw


def content_of(events: Sequence[str]) -> str:
    text = ""
    for event in events[:-1]:
        for choice in json.loads(event)["choices"]:
            text += choice["delta"].get("content") or ""
    return text


def test_a_kept_answer_streams_whole_and_an_escalated_one_is_the_large_tiers(
    gateway: Gateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Reply(text="Hello there, friend."))
    r, events, _ = stream(gateway, stream_options={"include_usage": True})
    assert r.headers["x-tiergate-route"] == "small" and events[-1] == "[DONE]"
    assert content_of(events) == "Hello there, friend."
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["model"] for c in chunks} == {"small-a"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 7
    assert small.history[0].body.get("stream") is not True, "the cheaper answer comes whole"

    small.enqueue(Reply(text=LOOP))
    large.enqueue(Reply(text="A large answer, streamed live."))
    r, events, _ = stream(gateway)
    assert r.headers["x-tiergate-escalated"] == "degenerate"
    assert r.headers["x-tiergate-route"] == "large"
    assert content_of(events) == "A large answer, streamed live."
    assert large.history[-1].body["stream"] is True
    kept, escalated = gateway.records.wait(2)
    assert kept.stream and kept.ttft_s is not None and kept.escalated is None
    assert escalated.escalated == "degenerate" and escalated.deployment == "large-a"
    assert escalated.discarded_completion_tokens == 7 and not escalated.partial


def test_a_held_answer_gets_keepalives_then_says_where_it_came_from(
    gateway: Gateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Reply(text=LOOP, delay_s=1.0))
    large.enqueue(Reply(text="Fixed."))
    r, events, raw = stream(gateway)
    assert raw.startswith(": keep-alive\n\n")
    assert raw.count(": keep-alive\n\n") >= 2
    assert ": tiergate route=large deployment=large-a escalated=degenerate\n\n" in raw
    assert "x-tiergate-route" not in r.headers, "the route was not known when headers went out"
    assert content_of(events) == "Fixed." and events[-1] == "[DONE]"
    (rec,) = gateway.records.wait(1)
    assert rec.escalated == "degenerate" and rec.status_code == 200


# --- the verifier ----------------------------------------------------------------------------


class HedgeVerifier:
    """p_escalate 0.9 for answers that hedge ("I think"), 0.1 otherwise."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str]] = []

    def score(self, requests: Sequence[Any], answers: Sequence[str]) -> np.ndarray:
        self.calls += list(zip(requests, answers, strict=True))
        return np.array([0.9 if "I think" in a else 0.1 for a in answers])


def test_the_verifier_escalates_above_its_threshold(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    verifier = HedgeVerifier()
    config = escalating_config(small, large, verifier="mine", verifier_threshold=0.5)
    gateway = start(tmp_path, config, verifiers={"mine": verifier})
    try:
        small.enqueue(Reply(text="I think it is 5."), Reply(text="It is 4."))
        unsure = call(gateway, "What is 2 + 2?")
        sure = call(gateway, "What is 2 + 2?")
        assert unsure.headers["x-tiergate-escalated"] == "verifier"
        assert "x-tiergate-escalated" not in sure.headers
        first, second = gateway.records.wait(2)
        assert first.p_escalate == pytest.approx(0.9) and second.p_escalate == pytest.approx(0.1)
        assert verifier.calls[0][1] == "I think it is 5."
        assert verifier.calls[0][0] == [{"role": "user", "content": "What is 2 + 2?"}]
    finally:
        gateway.stop()


def test_checks_run_before_the_verifier(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    verifier = HedgeVerifier()
    config = escalating_config(small, large, verifier="mine")
    gateway = start(tmp_path, config, verifiers={"mine": verifier})
    try:
        small.enqueue(Reply(text=LOOP))
        assert call(gateway).headers["x-tiergate-escalated"] == "degenerate"
        assert verifier.calls == []
    finally:
        gateway.stop()


def test_the_budget_reservation_covers_both_answers(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    """Reserving $0.000207 on the small tier fits a $0.01 budget; adding the large tier's $0.0155
    for a possible escalation does not, so the escalating policy is refused before any call."""
    config = escalating_config(small, large)
    config["policies"]["plain"] = {"threshold": 0.5}
    config["keys"] = [{"id": "k1", "key_env": "K1", "budget_usd": 0.01}]
    gateway = start(tmp_path, config, {"K1": "secret"})
    try:
        plain = gateway.post(
            {"model": "auto:plain", "messages": [{"role": "user", "content": "Say hello"}]},
            key="secret",
        )
        assert plain.status_code == 200
        refused = gateway.post(
            {"model": "auto", "messages": [{"role": "user", "content": "Say hello"}]},
            key="secret",
        )
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "insufficient_quota"
        assert len(small.history) == 1 and not large.history
    finally:
        gateway.stop()


def test_the_responses_api_escalates_and_replays_kept_answers_as_typed_events(
    gateway: Gateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    from openai import OpenAI

    # Closed at the end: an open client keeps its pooled connections until garbage collection.
    with OpenAI(base_url=gateway.url, api_key="unused", max_retries=0) as client:
        small.enqueue(Reply(text=LOOP))
        large.enqueue(Reply(text="A large answer."))
        raw = client.responses.with_raw_response.create(model="auto", input="Say hi")
        assert raw.headers["x-tiergate-escalated"] == "degenerate"
        assert raw.parse().output_text == "A large answer."

        small.enqueue(Reply(text="one two three", prompt_tokens=5, completion_tokens=3))
        events = list(client.responses.create(model="auto", input="Count", stream=True))
        kinds = [e.type for e in events]
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
        assert "".join(deltas) == "one two three"
        final = events[-1].response  # type: ignore[union-attr]
        assert final.usage.output_tokens == 3 and final.model == "small-a"
    escalated, kept = gateway.records.wait(2)
    assert escalated.endpoint == kept.endpoint == "responses"
    assert kept.stream and kept.escalated is None and kept.escalation_tier == "large"


def test_a_request_kept_local_escalates_only_to_local_deployments(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    """Under `pii: keep_local` a request with personal data never reaches a tier without a local
    deployment: a failing cheaper answer is served as it is. Marked local, the escalation tier
    answers it as usual; a request without personal data escalates as always."""
    config = escalating_config(small, large)
    config["deployments"]["small-a"]["local"] = True
    config["policies"]["verified"]["pii"] = "keep_local"
    private = "Mail jane.doe@example.com the report"
    (tmp_path / "remote").mkdir()
    running = start(tmp_path / "remote", config)
    try:
        small.default = Reply(text=LOOP)
        kept = call(running, private)
        assert kept.status_code == 200, kept.text
        assert "x-tiergate-escalated" not in kept.headers
        assert kept.headers["x-tiergate-route"] == "small"
        assert large.history == []
        escalated = call(running, "Mail the report")
        assert escalated.headers["x-tiergate-escalated"] == "degenerate"
        assert len(large.history) == 1
        records = running.records.wait(2)
        assert records[0].pii == "email" and records[0].escalation_tier is None
    finally:
        running.stop()
    config["deployments"]["large-a"]["local"] = True
    (tmp_path / "local").mkdir()
    running = start(tmp_path / "local", config)
    try:
        local = call(running, private)
        assert local.headers["x-tiergate-escalated"] == "degenerate"
        assert local.headers["x-tiergate-route"] == "large"
    finally:
        running.stop()
