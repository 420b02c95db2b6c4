"""The request log on a real Postgres: every field lands, and rows + counted drops = records even
when Postgres is slow (a table lock held by another session) or away (the network to it cut, by a
TCP proxy the test controls), without ever blocking the event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from gateway.storage import Database
from gateway.telemetry.prometheus import GatewayMetrics
from gateway.telemetry.requestlog import COLUMN_NAMES, RequestLog
from tests.support.postgres import PostgresServer, count
from tests.support.records import loop_gaps_while_recording, make_record
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxied(postgres_server: PostgresServer, postgres_url: str) -> Iterator[tuple[str, TcpProxy]]:
    """(a URL that reaches the test database through a proxy the test can cut, the proxy)."""
    Database.open(postgres_url).close()  # migrated directly
    proxy = TcpProxy(postgres_server.port).start()
    yield postgres_url.replace(f":{postgres_server.port}/", f":{proxy.port}/"), proxy
    proxy.down()


def open_log(url: str, metrics: GatewayMetrics | None = None, **kw: float) -> RequestLog:
    metrics = metrics or GatewayMetrics()
    return RequestLog(
        Database.open(url).request_writer(),
        on_written=metrics.count_log_rows,
        on_dropped=metrics.count_log_dropped,
        **kw,  # type: ignore[arg-type]
    )


def dropped(metrics: GatewayMetrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "tiergate_request_log_dropped_total", {"reason": reason}
    )
    return value or 0.0


async def test_every_field_lands_in_its_column_with_its_type(postgres_url: str) -> None:
    log = open_log(postgres_url)
    rec = make_record(
        stream=True, ttft_s=0.04, tokens_estimated=True, fallback_reason="timeout", partial=True
    )
    log.record(rec)
    await log.aclose()
    with psycopg.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM requests")
        row = cur.fetchone()
        assert row is not None and cur.description is not None
        names = tuple(d.name for d in cur.description)
    assert names == COLUMN_NAMES
    assert dict(zip(names, row, strict=True)) == {n: getattr(rec, n) for n in COLUMN_NAMES}


async def test_concurrent_producers_lose_no_row(postgres_url: str) -> None:
    log = open_log(postgres_url, linger_s=0.05)

    async def client(n: int) -> None:
        for _ in range(n):
            log.record(make_record())
            await asyncio.sleep(0)

    await asyncio.gather(*(client(50) for _ in range(40)))
    await log.flush()
    assert count(postgres_url) == 2000
    await log.aclose()
    assert log.dropped == 0


async def test_a_slow_postgres_drops_counted_rows_and_never_blocks_the_loop(
    postgres_url: str,
) -> None:
    metrics = GatewayMetrics()
    log = open_log(postgres_url, metrics, queue_size=50, linger_s=0.01)
    log.record(make_record())
    await log.flush()  # connected
    locker = psycopg.connect(postgres_url)
    locker.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")  # held until rollback
    try:
        gaps = await loop_gaps_while_recording(log, ticks=100)
    finally:
        locker.rollback()
        locker.close()
    assert max(gaps) < 0.15, max(gaps)
    await log.aclose()
    assert dropped(metrics, "queue_full") > 0
    assert log.written + log.dropped == 501
    assert count(postgres_url) == log.written


async def test_postgres_away_for_a_while_loses_nothing_the_queue_can_hold(
    proxied: tuple[str, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    url, proxy = proxied
    metrics = GatewayMetrics()
    log = open_log(url, metrics, linger_s=0.01)
    log.record(make_record())
    await log.flush()
    with caplog.at_level(logging.WARNING, logger="gateway.telemetry.requestlog"):
        proxy.down()
        started = time.perf_counter()
        for _ in range(300):
            log.record(make_record())
            await asyncio.sleep(0.001)
        assert time.perf_counter() - started < 3  # records never waited for the database
        await asyncio.sleep(1.5)  # the writer retries with backoff meanwhile
        proxy.up()
        await asyncio.wait_for(log.flush(), timeout=30)
    assert "retrying" in caplog.text and "the database is back" in caplog.text
    await log.aclose()
    assert log.dropped == 0
    assert log.written == 301
    direct = url.replace(f":{proxy.port}/", f":{proxy.target[1]}/")
    assert count(direct) == 301


async def test_postgres_away_past_the_queue_counts_every_lost_row(
    proxied: tuple[str, TcpProxy],
) -> None:
    url, proxy = proxied
    metrics = GatewayMetrics()
    log = open_log(url, metrics, queue_size=100, linger_s=0.01)
    proxy.down()
    for _ in range(400):
        log.record(make_record())
        await asyncio.sleep(0)
    await asyncio.sleep(0.5)
    proxy.up()
    await asyncio.wait_for(log.flush(), timeout=30)
    await log.aclose()
    direct = url.replace(f":{proxy.port}/", f":{proxy.target[1]}/")
    assert dropped(metrics, "queue_full") > 0
    assert count(direct) + dropped(metrics, "queue_full") == 400
    assert log.written == count(direct)


async def test_shutdown_with_postgres_away_ends_in_bounded_time_and_counts_the_rest(
    proxied: tuple[str, TcpProxy],
) -> None:
    url, proxy = proxied
    metrics = GatewayMetrics()
    log = open_log(url, metrics, linger_s=0.01, close_timeout_s=1.0)
    proxy.down()
    for _ in range(50):
        log.record(make_record())
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await log.aclose()
    assert time.monotonic() - started < 8
    assert dropped(metrics, "unavailable") == 50
    assert log.written == 0


def test_the_writer_thread_is_the_only_thread_that_waits(postgres_url: str) -> None:
    """`record` from many threads at once (as uvicorn workers' loops would) never blocks."""
    log = open_log(postgres_url, linger_s=0.01)
    barrier = threading.Barrier(4)

    def produce() -> None:
        barrier.wait()
        for _ in range(250):
            log.record(make_record())

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert log.written + log.dropped == 1000
    assert count(postgres_url) == log.written
