"""Per-key rate limits and budgets (in-memory counters): 429 with OpenAI's codes, budget and rate
downgrades, reservations settled to what was used, and the fail-open / fail-closed choice."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.access.counters import CounterError, MemoryCounters
from gateway.access.keys import ApiKey
from gateway.access.quota import NANO_USD, Quota
from gateway.config import KeySpec
from gateway.protocol.errors import GatewayError
from tests.support.gateway import HARD, chat, config, start
from tests.support.upstream import FakeUpstream

KEY = "sk-limited-key-000"


def limited(small: FakeUpstream, large: FakeUpstream, **key: Any) -> dict[str, Any]:
    cfg = config(small.url, large.url)
    cfg["keys"] = [{"id": "lim", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(), **key}]
    return cfg


def away_from_a_minute_boundary() -> None:
    """Per-minute windows are calendar minutes: keep a short test inside one."""
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


def test_over_rpm_is_429_rate_limit_exceeded_with_retry_after(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, limited(small, large, rpm=3))
    try:
        away_from_a_minute_boundary()
        assert [gw.post(chat(), key=KEY).status_code for _ in range(3)] == [200] * 3
        r = gw.post(chat(), key=KEY)
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
        assert "rpm limit of 3" in error["message"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert len(small.history) == 3
        rec = gw.records.wait(4)[3]
        assert rec.status_code == 429 and rec.error_kind == "rate_limit_exceeded"
        assert rec.api_key_id == "lim"
        assert 'tiergate_limit_rejections_total{reason="rpm"} 1.0' in gw.metrics()
    finally:
        gw.stop()


def test_over_tpm_is_429(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> None:
    gw = start(tmp_path, limited(small, large, tpm=100))
    try:
        away_from_a_minute_boundary()
        codes = [gw.post(chat(max_tokens=10), key=KEY).status_code for _ in range(6)]
        assert codes[0] == 200 and codes[-1] == 429
        r = gw.post(chat(max_tokens=10), key=KEY)
        assert "tpm limit of 100" in r.json()["error"]["message"]
    finally:
        gw.stop()


def test_budget_is_never_exceeded_and_then_429_insufficient_quota(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    budget = 0.00002
    gw = start(tmp_path, limited(small, large, budget_usd=budget, budget_period="month"))
    try:
        codes = [gw.post(chat(max_tokens=10), key=KEY).status_code for _ in range(12)]
        assert codes[0] == 200 and codes[-1] == 429
        spent = sum(rec.cost_usd for rec in gw.records.items)
        assert 0 < spent <= budget
        r = gw.post(chat(max_tokens=10), key=KEY)
        assert r.json()["error"]["code"] == "insufficient_quota"
        assert int(r.headers["retry-after"]) > 0
    finally:
        gw.stop()


def test_a_downgrade_policy_sends_an_over_budget_request_to_the_small_tier(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    cfg = limited(small, large, budget_usd=0.0001)
    cfg["policies"] = {"balanced": {"threshold": 0.5, "on_over_budget": "downgrade"}}
    gw = start(tmp_path, cfg)
    try:
        r = gw.post({"model": "auto", "messages": HARD, "max_tokens": 10}, key=KEY)
        assert r.status_code == 200
        assert r.headers["x-tiergate-downgraded"] == "budget"
        assert r.headers["x-tiergate-deployment"] == "small-a"
        assert not large.history
        rec = gw.records.last
        assert rec.intended_tier == "large" and rec.served_tier == "small"
        assert "tiergate_budget_downgrades_total 1.0" in gw.metrics()
    finally:
        gw.stop()
    cfg["policies"] = {"balanced": {"threshold": 0.5}}
    gw = start(tmp_path, cfg)
    try:
        r = gw.post({"model": "auto", "messages": HARD, "max_tokens": 10}, key=KEY)
        assert r.status_code == 429 and r.json()["error"]["code"] == "insufficient_quota"
    finally:
        gw.stop()


def test_a_downgrade_policy_sends_an_over_rate_request_to_the_small_tier(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    cfg = limited(small, large, rpm=2)
    cfg["policies"] = {"balanced": {"threshold": 0.5, "on_over_rate": "downgrade"}}
    hard = {"model": "auto", "messages": HARD, "max_tokens": 10}
    gw = start(tmp_path, cfg)
    try:
        away_from_a_minute_boundary()
        first = [gw.post(hard, key=KEY) for _ in range(2)]
        assert [r.status_code for r in first] == [200, 200]
        assert all("x-tiergate-downgraded" not in r.headers for r in first)
        assert len(large.history) == 2
        # over rpm: served by the small tier, counted against its overflow counter (rpm again)
        over = [gw.post(hard, key=KEY) for _ in range(2)]
        assert [r.status_code for r in over] == [200, 200]
        assert [r.headers["x-tiergate-downgraded"] for r in over] == ["rate", "rate"]
        assert [r.headers["x-tiergate-deployment"] for r in over] == ["small-a", "small-a"]
        assert len(large.history) == 2 and len(small.history) == 2
        rec = gw.records.wait(4)[3]
        assert rec.intended_tier == "large" and rec.served_tier == "small"
        # past the overflow too: 429, and a request bound for the small tier is never downgraded
        r = gw.post(hard, key=KEY)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
        assert gw.post(chat(), key=KEY).status_code == 429
        assert len(small.history) == 2
        assert 'tiergate_limit_rejections_total{reason="rpm"} 2.0' in gw.metrics()
        assert "tiergate_rate_downgrades_total 2.0" in gw.metrics()
    finally:
        gw.stop()
    cfg["policies"] = {"balanced": {"threshold": 0.5}}  # the default: reject
    gw = start(tmp_path, cfg)
    try:
        away_from_a_minute_boundary()
        assert [gw.post(hard, key=KEY).status_code for _ in range(3)] == [200, 200, 429]
    finally:
        gw.stop()


def test_the_admin_endpoint_shows_what_was_used(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    cfg = limited(small, large, rpm=50, tpm=10_000, budget_usd=1.0)
    cfg["keys"].append({"id": "admin", "key_env": "ADMIN", "admin": True})
    gw = start(tmp_path, cfg, env={"ADMIN": "sk-admin"})
    try:
        away_from_a_minute_boundary()
        gw.post(chat(max_tokens=10), key=KEY)
        gw.records.wait(1)
        time.sleep(0.1)  # the settlement runs after the response
        import httpx

        usage = httpx.get(gw.root + "/admin/usage/lim", headers={"x-api-key": "sk-admin"}).json()
        assert usage["requests_this_minute"] == 1 and usage["rpm"] == 50
        assert usage["tokens_this_minute"] == 18  # the upstream's usage, not the reservation
        assert usage["spent_usd"] == pytest.approx(11 * 0.1e-6 + 7 * 0.2e-6)
    finally:
        gw.stop()


# --- the Quota itself -------------------------------------------------------------------------


def api_key(**spec: Any) -> ApiKey:
    return ApiKey("k", KeySpec(id="k", key_env="X", **spec))


class BrokenStore(MemoryCounters):
    async def reserve(self, key: str, amount: int, limit: int, ttl_s: int) -> tuple[bool, int]:
        raise CounterError("redis: ConnectionError")


async def test_reservations_are_settled_to_the_real_use() -> None:
    store = MemoryCounters()
    quota = Quota(store, on_error="open")
    key = api_key(tpm=1000, budget_usd=1.0)
    ticket = await quota.admit(key, tokens=300, cost_usd=0.5, small_cost_usd=None)
    assert await store.get(ticket.tokens_key or "") == 300
    assert await store.get(ticket.usd_key or "") == NANO_USD // 2
    quota.settle(ticket, tokens=120, cost_usd=0.1)
    await quota.aclose()
    assert await store.get(ticket.tokens_key or "") == 120
    assert await store.get(ticket.usd_key or "") == NANO_USD // 10


async def test_a_refused_limit_gives_back_what_earlier_limits_took() -> None:
    store = MemoryCounters()
    quota = Quota(store, on_error="open")
    key = api_key(rpm=10, tpm=100)
    with pytest.raises(GatewayError) as refused:
        await quota.admit(key, tokens=500, cost_usd=0.0, small_cost_usd=None)
    assert refused.value.status == 429
    minute = int(time.time() // 60)
    assert await store.get(f"rpm:k:{minute}") == 0


async def test_an_over_tpm_downgrade_uses_the_overflow_counters_and_the_small_price() -> None:
    store = MemoryCounters()
    quota = Quota(store, on_error="open")
    key = api_key(rpm=10, tpm=100, budget_usd=1.0)
    minute = int(time.time() // 60)

    def admit() -> Any:
        return quota.admit(key, tokens=80, cost_usd=0.5, small_cost_usd=0.1, downgrade=("rate",))

    full = await admit()
    assert full.downgraded is None and full.nano_reserved == NANO_USD // 2
    over = await admit()
    assert over.downgraded == "rate" and quota.rate_downgraded == 1
    assert over.tokens_key == f"tpm:k:small:{minute}" and over.nano_reserved == NANO_USD // 10
    assert await store.get(f"rpm:k:{minute}") == 1  # the refused main reservation was given back
    assert await store.get(f"rpm:k:small:{minute}") == 1
    assert await store.get(f"tpm:k:{minute}") == 80
    with pytest.raises(GatewayError) as refused:  # the overflow is full too
        await admit()
    assert refused.value.code == "rate_limit_exceeded" and quota.rejected["tpm"] == 1
    with pytest.raises(GatewayError):  # a policy without `rate`: no second chance
        await quota.admit(key, tokens=80, cost_usd=0.5, small_cost_usd=0.1)
    assert quota.rate_downgraded == 1 and quota.downgraded == 0


@pytest.mark.parametrize("mode", ["open", "closed"])
async def test_an_unreachable_store_fails_open_or_closed_and_is_counted(mode: str) -> None:
    quota = Quota(BrokenStore(), on_error=mode)  # type: ignore[arg-type]
    key = api_key(rpm=1)
    if mode == "open":
        for _ in range(3):
            ticket = await quota.admit(key, tokens=1, cost_usd=0.0, small_cost_usd=None)
            assert ticket.tokens_key is None and ticket.usd_key is None
    else:
        with pytest.raises(GatewayError) as refused:
            await quota.admit(key, tokens=1, cost_usd=0.0, small_cost_usd=None)
        assert refused.value.status == 503 and refused.value.code == "limits_unavailable"
    assert quota.store_errors == (3 if mode == "open" else 1)


async def test_memory_counters_expire() -> None:
    now = [1000.0]
    store = MemoryCounters(clock=lambda: now[0])
    assert await store.reserve("a", 5, 5, ttl_s=60) == (True, 5)
    assert await store.reserve("a", 1, 5, ttl_s=60) == (False, 5)
    now[0] += 61
    assert await store.get("a") == 0
    assert await store.reserve("a", 1, 5, ttl_s=60) == (True, 1)
