"""Shared counters in a real redis-server: two gateways enforce one key's limit and one budget
together, and an unreachable Redis fails open or closed as configured."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.quota import NANO_USD
from gateway.ratelimit import CounterError, RedisCounters
from tests.reliability.support import Gateway, RedisServer, chat, config, start
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.redis

KEY = "sk-shared-key-123"


def shared(small: FakeUpstream, large: FakeUpstream, redis_url: str, **key: Any) -> dict[str, Any]:
    cfg = config(small.url, large.url)
    cfg["keys"] = [{"id": "shared", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(), **key}]
    cfg["redis_url"] = redis_url
    return cfg


def two_gateways(tmp_path: Path, cfg: dict[str, Any]) -> list[Gateway]:
    return [start(tmp_path / name, cfg) for name in ("a", "b")]


def burst(gateways: list[Gateway], n: int, body: dict[str, Any]) -> list[httpx.Response]:
    """`n` requests at once, alternating between the gateways."""
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(gateways[i % 2].post, body, KEY) for i in range(n)]
        return [f.result() for f in futures]


def test_two_gateways_share_one_rpm_limit(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, redis_server: RedisServer
) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    gateways = two_gateways(tmp_path, shared(small, large, redis_server.url, rpm=10))
    try:
        if time.time() % 60 > 45:  # one calendar minute for the whole burst
            time.sleep(61 - time.time() % 60)
        codes = [r.status_code for r in burst(gateways, 30, chat())]
        assert codes.count(200) == 10, codes
        assert codes.count(429) == 20
        assert len(small.history) == 10
        served = [
            len(g.records.items) - sum(r.status_code == 429 for r in g.records.items)
            for g in gateways
        ]
        assert all(s > 0 for s in served), f"both gateways served some: {served}"
    finally:
        for g in gateways:
            g.stop()


def test_two_gateways_share_one_budget_and_never_exceed_it(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, redis_server: RedisServer
) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    budget = 0.00004  # about 10 small answers of 2.5 micro-USD, reserved at 4 micro-USD
    gateways = two_gateways(tmp_path, shared(small, large, redis_server.url, budget_usd=budget))
    try:
        answered = 0
        for _ in range(4):  # bursts, so settled reservations free room for later requests
            answered += sum(r.status_code == 200 for r in burst(gateways, 12, chat(max_tokens=10)))
        records = [rec for g in gateways for rec in g.records.items]
        spent = sum(rec.cost_usd for rec in records)
        assert answered >= 8, answered
        assert spent <= budget
        time.sleep(0.2)
        period = time.strftime("%Y-%m-%d", time.gmtime())

        async def read() -> int:
            counter = RedisCounters(redis_server.url)
            try:
                return await counter.get(f"usd:shared:{period}")
            finally:
                await counter.aclose()

        total = asyncio.run(read())
        assert total <= budget * NANO_USD
        assert total == pytest.approx(spent * NANO_USD, abs=answered)
    finally:
        for g in gateways:
            g.stop()


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_redis_down_fails_as_configured_and_is_counted(
    tmp_path: Path,
    small: FakeUpstream,
    large: FakeUpstream,
    redis_server: RedisServer,
    mode: str,
) -> None:
    cfg = shared(small, large, redis_server.url, rpm=100)
    cfg["limits"] = {"on_redis_error": mode}
    gw = start(tmp_path, cfg)
    try:
        assert gw.post(chat(), KEY).status_code == 200
        redis_server.stop()
        t0 = time.monotonic()
        r = gw.post(chat(), KEY)
        assert time.monotonic() - t0 < 3, "a dead Redis must not hang requests"
        if mode == "open":
            assert r.status_code == 200
        else:
            assert r.status_code == 503 and r.json()["error"]["code"] == "limits_unavailable"
            assert r.headers["retry-after"] == "1"
        assert "tiergate_limit_store_errors_total 1.0" in gw.metrics()
    finally:
        gw.stop()


async def test_the_store_raises_counter_error_when_redis_is_gone() -> None:
    store = RedisCounters("redis://127.0.0.1:9/0", timeout_s=0.2)
    with pytest.raises(CounterError):
        await store.reserve("x", 1, 10, 60)
    assert store.errors == 1
    await store.aclose()
