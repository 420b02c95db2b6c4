"""Budgets and tpm limits hold for streams (issue 13, item 3), with in-memory and Redis counters.

A key with a budget or a tpm limit sends its reserved completion cap upstream (the client's own
`max_tokens` / `max_completion_tokens`, or the gateway's reserve, marked as injected); a stream
whose upstream ignores the cap is ended when it reaches what the key may still spend, with an SSE
error event `insufficient_quota` and `[DONE]`; and concurrent streams never spend more than the
budget together, whichever counters hold it.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.access.quota import NANO_USD
from tests.support.gateway import Gateway, chat, config, start
from tests.support.upstream import Endless, FakeUpstream

KEY = "sk-stream-budget-000"
RESERVE = 100
"""`limits.reserve_completion_tokens` here: streams reach their reservation within a second."""


def budgeted(small: FakeUpstream, large: FakeUpstream, **key: Any) -> dict[str, Any]:
    cfg = config(small.url, large.url, timeout_s=5)
    cfg["keys"] = [{"id": "b", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(), **key}]
    cfg["limits"] = {"reserve_completion_tokens": RESERVE}
    return cfg


def stream(gw: Gateway, body: dict[str, Any]) -> tuple[int, list[str]]:
    """(status, the `data:` payloads); an answer that never ends is read at most 20,000 events."""
    headers = {"authorization": f"Bearer {KEY}"}
    with httpx.stream(
        "POST", gw.url + "/chat/completions", json=body, headers=headers, timeout=30
    ) as r:
        if r.status_code != 200:
            r.read()
            return r.status_code, [r.text]
        events = []
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
            if len(events) > 20_000:
                break
        return 200, events


def test_the_reserved_cap_is_sent_upstream_when_the_key_has_limits(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, budgeted(small, large, budget_usd=1.0))
    try:
        headers = {"authorization": f"Bearer {KEY}"}
        httpx.post(gw.url + "/chat/completions", json=chat(), headers=headers)
        assert small.history[-1].body["max_completion_tokens"] == RESERVE
        assert "max_tokens" not in small.history[-1].body
        httpx.post(gw.url + "/chat/completions", json=chat(max_tokens=7), headers=headers)
        assert small.history[-1].body["max_tokens"] == 7
        assert "max_completion_tokens" not in small.history[-1].body
        httpx.post(
            gw.url + "/chat/completions", json=chat(max_completion_tokens=9), headers=headers
        )
        assert small.history[-1].body["max_completion_tokens"] == 9
        completion = {"model": "auto", "prompt": "Say hi"}
        httpx.post(gw.url + "/completions", json=completion, headers=headers)
        assert small.history[-1].body["max_tokens"] == RESERVE
    finally:
        gw.stop()
    gw = start(tmp_path, budgeted(small, large, tpm=100_000))
    try:
        httpx.post(gw.url + "/chat/completions", json=chat(), headers=headers)
        assert small.history[-1].body["max_completion_tokens"] == RESERVE
    finally:
        gw.stop()
    gw = start(tmp_path, budgeted(small, large, rpm=100))  # no budget, no tpm: nothing to cap
    try:
        httpx.post(gw.url + "/chat/completions", json=chat(), headers=headers)
        sent = small.history[-1].body
        assert "max_completion_tokens" not in sent and "max_tokens" not in sent
    finally:
        gw.stop()


def test_a_stream_past_its_allowance_ends_with_insufficient_quota(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    """The issue's case: an upstream that ignores the cap spent four times the budget."""
    budget = 0.0001  # about five reservations of 100 completion tokens at 0.2 USD / Mtok
    gw = start(tmp_path, budgeted(small, large, budget_usd=budget))
    try:
        small.enqueue(Endless(interval_s=0.001))
        status, events = stream(gw, chat(stream=True))
        assert status == 200
        assert events[-1] == "[DONE]"
        error = json.loads(events[-2])["error"]
        assert error["code"] == "insufficient_quota" and error["type"] == "rate_limit_error"
        rec = gw.records.wait(1)[0]
        assert rec.partial and rec.error_kind == "insufficient_quota"
        assert rec.cost_usd <= budget
        assert rec.completion_tokens < 5 * RESERVE
    finally:
        gw.stop()


def run_twenty(gw: Gateway, small: FakeUpstream) -> tuple[list[int], float]:
    small.default = Endless(interval_s=0.002)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: stream(gw, chat(stream=True)), range(20)))
    records = gw.records.wait(20)
    statuses = [status for status, _ in results]
    for status, events in results:
        if status == 200:
            assert events[-1] == "[DONE]"
            assert "insufficient_quota" in events[-2] or "upstream_timeout" in events[-2]
    return statuses, sum(rec.cost_usd for rec in records)


def test_twenty_concurrent_streams_never_spend_more_than_the_budget(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    budget = 0.0001
    gw = start(tmp_path, budgeted(small, large, budget_usd=budget))
    try:
        statuses, spent = run_twenty(gw, small)
    finally:
        gw.stop()
    assert 1 <= statuses.count(200) <= 5, statuses
    assert statuses.count(200) + statuses.count(429) == 20
    assert spent <= budget, spent


@pytest.mark.redis
def test_twenty_concurrent_streams_never_spend_more_than_the_budget_in_redis(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, redis_server: Any
) -> None:
    import redis

    budget = 0.0001
    cfg = budgeted(small, large, budget_usd=budget)
    cfg["redis_url"] = redis_server.url
    gw = start(tmp_path, cfg)
    try:
        statuses, spent = run_twenty(gw, small)
        time.sleep(0.3)  # settling runs in the background
    finally:
        gw.stop()
    assert 1 <= statuses.count(200) <= 5, statuses
    assert spent <= budget, spent
    client = redis.Redis.from_url(redis_server.url)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    counted = int(client.get(f"tiergate:usd:b:{day}") or 0)  # RedisCounters' default prefix
    client.close()
    assert counted <= budget * NANO_USD
    assert abs(counted - spent * NANO_USD) <= 20, (counted, spent * NANO_USD)
