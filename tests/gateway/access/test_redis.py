"""Shared counters in a real redis-server: two gateways (two apps in one process, and two OS
processes) enforce one key's limit and one budget together, and an unreachable Redis fails open or
closed as configured."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.access.counters import CounterError, RedisCounters
from gateway.access.quota import NANO_USD
from tests.support.gateway import Gateway, chat, config, start
from tests.support.paths import REPO
from tests.support.redis import RedisServer, free_port
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.redis

KEY = "sk-shared-key-123"


def shared(small: FakeUpstream, large: FakeUpstream, redis_url: str, **key: Any) -> dict[str, Any]:
    cfg = config(small.url, large.url)
    cfg["keys"] = [{"id": "shared", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(), **key}]
    cfg["redis_url"] = redis_url
    # The limits must hold exactly here: a burst on two busy cores may take Redis longer than
    # the default 0.25 s, and the gateway would then fail open (by design) and admit one more.
    cfg["limits"] = {**cfg.get("limits", {}), "redis_timeout_s": 5.0}
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
        assert_spend_in_redis(redis_server.url, "shared", budget, spent, answered)
    finally:
        for g in gateways:
            g.stop()


BUDGET_KEY = "sk-shared-budget-456"


def gateway_process(cfg_path: Path, port: int, log_dir: Path) -> subprocess.Popen[bytes]:
    """`bench.gateway_server`: `tiergate serve`'s app and server in its own OS process, with the
    instant keyword scorer instead of the trained router."""
    log_dir.mkdir()
    args = ["--config", str(cfg_path), "--port", str(port), "--log-dir", str(log_dir)]
    with (log_dir / "stderr.log").open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "bench.gateway_server", *args],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_healthy(root: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"gateway process exited with {proc.returncode}")
        try:
            if httpx.get(root + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{root} not healthy after {timeout_s:g} s")
        time.sleep(0.1)


def test_two_gateway_processes_share_one_rpm_limit_and_one_budget(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, redis_server: RedisServer
) -> None:
    budget = 0.00002  # 8 answers of 2.5 micro-USD at most, fewer while reservations are held
    cfg = shared(small, large, redis_server.url, rpm=10)
    cfg["keys"].append(
        {
            "id": "budget",
            "key_sha256": hashlib.sha256(BUDGET_KEY.encode()).hexdigest(),
            "budget_usd": budget,
        }
    )
    cfg_path = tmp_path / "tiergate.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    ports = [free_port(), free_port()]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, port in zip(("a", "b"), ports, strict=True):
            procs.append(gateway_process(cfg_path, port, tmp_path / name))
        roots = [f"http://127.0.0.1:{port}" for port in ports]
        for root, proc in zip(roots, procs, strict=True):
            wait_healthy(root, proc)

        def send(i: int, key: str, body: dict[str, Any]) -> tuple[int, httpx.Response]:
            url = roots[i % 2] + "/v1/chat/completions"
            headers = {"authorization": f"Bearer {key}"}
            return i % 2, httpx.post(url, json=body, headers=headers, timeout=30)

        def burst30(key: str, body: dict[str, Any]) -> list[tuple[int, httpx.Response]]:
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                return list(pool.map(lambda i: send(i, key, body), range(30)))

        if time.time() % 60 > 45:  # one calendar minute for the whole burst
            time.sleep(61 - time.time() % 60)
        rated = burst30(KEY, chat())
        ok = [gw for gw, r in rated if r.status_code == 200]
        refused = [r for _, r in rated if r.status_code != 200]
        # 10 answers from two processes that each saw 15 requests: one count, shared (apart, each
        # would answer 10). Which process took the slots depends on which reached Redis first: on
        # the direct backend (backend: auto) a request is under a millisecond, and one process
        # can take all ten; both refused the rest with the same error below.
        assert len(ok) == 10, [r.status_code for _, r in rated]
        assert {gw for gw, _ in rated} == {0, 1}
        assert len(refused) == 20
        assert all(r.status_code == 429 for r in refused)
        assert {r.json()["error"]["code"] for r in refused} == {"rate_limit_exceeded"}
        assert len(small.history) == 10

        spent = 0.0
        answered = 0
        for _ in range(2):  # settled reservations free room for a second burst
            for _, r in burst30(BUDGET_KEY, chat(max_tokens=10)):
                if r.status_code == 200:
                    usage = r.json()["usage"]
                    spent += usage["prompt_tokens"] * 0.1e-6 + usage["completion_tokens"] * 0.2e-6
                    answered += 1
                else:
                    assert r.status_code == 429, r.text
                    assert r.json()["error"]["code"] == "insufficient_quota"
        assert 4 <= answered <= 8, answered  # 8: the budget's worth, whichever process answered
        assert spent <= budget
        time.sleep(0.3)  # the last settlements run after their responses
        assert_spend_in_redis(redis_server.url, "budget", budget, spent, answered)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


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


def assert_spend_in_redis(
    url: str, key_id: str, budget: float, spent: float, answered: int
) -> None:
    """The key's spend counter in Redis (today's, the default budget_period) never passed the
    budget and equals what the answered requests cost, to a nano-dollar per request."""
    period = time.strftime("%Y-%m-%d", time.gmtime())

    async def read() -> int:
        counter = RedisCounters(url)
        try:
            return await counter.get(f"usd:{key_id}:{period}")
        finally:
            await counter.aclose()

    total = asyncio.run(read())
    assert total <= budget * NANO_USD
    assert total == pytest.approx(spent * NANO_USD, abs=answered)
