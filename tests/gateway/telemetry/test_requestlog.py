"""The request log: rows as records, the bounded queue, flushing, overflow and write errors."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.storage import StorageError
from gateway.telemetry.prometheus import GatewayMetrics
from gateway.telemetry.record import RequestRecord
from gateway.telemetry.requestlog import COLUMN_NAMES, DB_FILENAME, RequestLog, SqliteWriter
from tests.support.records import loop_gaps_while_recording, make_record


def rows(path: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute("SELECT * FROM requests ORDER BY started_at"))
    finally:
        conn.close()


class SlowWriter:
    """A disk that takes `delay_s` per batch (and can be held shut with `gate`)."""

    def __init__(self, inner: SqliteWriter, delay_s: float = 0.0) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.gate = threading.Event()
        self.gate.set()

    def write(self, records: Sequence[RequestRecord]) -> None:
        self.gate.wait()
        time.sleep(self.delay_s)
        self.inner.write(records)

    def close(self) -> None:
        self.inner.close()


class BrokenWriter:
    def write(self, records: Sequence[RequestRecord]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    def close(self) -> None:
        return None


async def test_every_field_of_a_record_lands_in_its_column(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    log = RequestLog.open(path)
    rec = make_record(
        stream=True, ttft_s=0.04, tokens_estimated=True, fallback_reason="timeout", partial=True
    )
    log.record(rec)
    await log.aclose()
    (row,) = rows(path)
    assert tuple(row.keys()) == COLUMN_NAMES
    for name in COLUMN_NAMES:
        assert row[name] == getattr(rec, name), name
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_aclose_writes_everything_still_queued(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    slow = SlowWriter(SqliteWriter(path), delay_s=0.05)
    log = RequestLog(slow, queue_size=1000)
    for _ in range(300):
        log.record(make_record())
    await log.aclose()
    assert len(rows(path)) == 300
    assert log.written == 300
    assert log.dropped == 0


async def test_a_full_queue_drops_counts_and_warns_but_never_waits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / DB_FILENAME
    metrics = GatewayMetrics()
    slow = SlowWriter(SqliteWriter(path), delay_s=0.0)
    slow.gate.clear()  # the disk is stuck
    log = RequestLog(
        slow,
        queue_size=10,
        on_written=metrics.count_log_rows,
        on_dropped=metrics.count_log_dropped,
    )
    with caplog.at_level(logging.WARNING, logger="gateway.telemetry.requestlog"):
        started = time.perf_counter()
        for _ in range(100):
            log.record(make_record())
        spent = time.perf_counter() - started
    # 100 records against a stuck disk: at most a millisecond each (microseconds in practice).
    assert spent < 0.1, spent
    # The writer holds one batch (what it took before the gate), the queue 10; the rest are lost.
    dropped = metrics.registry.get_sample_value(
        "tiergate_request_log_dropped_total", {"reason": "queue_full"}
    )
    assert dropped is not None and dropped > 0
    assert dropped == log.dropped
    assert "request log: dropped" in caplog.text
    slow.gate.set()
    await log.aclose()
    written = metrics.registry.get_sample_value("tiergate_request_log_rows_total", {})
    assert written == len(rows(path))
    assert written + dropped == 100


async def test_a_failed_write_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    metrics = GatewayMetrics()
    log = RequestLog(BrokenWriter(), on_dropped=metrics.count_log_dropped)
    with caplog.at_level(logging.ERROR, logger="gateway.telemetry.requestlog"):
        for _ in range(5):
            log.record(make_record())
        await log.aclose()
    assert log.dropped == 5
    assert (
        metrics.registry.get_sample_value(
            "tiergate_request_log_dropped_total", {"reason": "write_error"}
        )
        == 5
    )
    assert "failed to write" in caplog.text


async def test_a_reused_request_id_keeps_both_rows(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    log = RequestLog.open(path)
    log.record(make_record(request_id="client-chose-this"))
    log.record(make_record(request_id="client-chose-this"))
    await log.aclose()
    assert len(rows(path)) == 2


async def test_records_after_close_are_counted_not_lost_silently(tmp_path: Path) -> None:
    log = RequestLog.open(tmp_path / DB_FILENAME)
    await log.aclose()
    log.record(make_record())
    assert log.dropped == 1


async def test_concurrent_producers_lose_no_row(tmp_path: Path) -> None:
    """Many tasks recording at once while a slowish disk writes: rows = records."""
    path = tmp_path / DB_FILENAME
    log = RequestLog(SlowWriter(SqliteWriter(path), delay_s=0.002))

    async def client(n: int) -> None:
        for _ in range(n):
            log.record(make_record())
            await asyncio.sleep(0)

    await asyncio.gather(*(client(50) for _ in range(40)))
    await log.flush()
    assert len(rows(path)) == 2000
    await log.aclose()
    assert log.dropped == 0


async def test_a_slow_disk_does_not_slow_the_event_loop(tmp_path: Path) -> None:
    """While the writer sleeps 200 ms per batch, the loop keeps ticking every few milliseconds."""
    path = tmp_path / DB_FILENAME
    log = RequestLog(SlowWriter(SqliteWriter(path), delay_s=0.2), queue_size=50)
    gaps = await loop_gaps_while_recording(log, ticks=50)
    # A blocked loop would show a gap of at least one 200 ms write.
    assert max(gaps) < 0.15, max(gaps)
    assert log.dropped > 0
    await log.aclose()
    assert log.written + log.dropped == 500
    assert len(rows(path)) == log.written


def test_an_older_log_gains_new_columns(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE requests (request_id TEXT PRIMARY KEY, started_at REAL)")
    conn.execute("INSERT INTO requests VALUES ('old', 1.0)")
    conn.commit()
    conn.close()
    writer = SqliteWriter(path)
    writer.write([make_record()])
    writer.close()
    got = rows(path)
    assert len(got) == 2
    assert tuple(got[0].keys()) == ("request_id", "started_at", *COLUMN_NAMES[2:])


def test_an_unusable_log_dir_fails_at_start_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match=r"cannot open the request log .*file/logs/requests\.db"):
        RequestLog.open(blocker / "logs" / DB_FILENAME)


class CountingWriter:
    """Counts the batches (transactions) the writer thread hands to the disk."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.wrote = threading.Event()

    def write(self, records: Sequence[RequestRecord]) -> None:
        self.batches.append(len(records))
        self.wrote.set()

    def close(self) -> None:
        return None


async def test_the_writer_lingers_to_batch_rows_yet_flush_and_close_never_wait() -> None:
    disk = CountingWriter()
    log = RequestLog(disk, linger_s=0.3)
    for _ in range(5):  # one request every 20 ms: five wake-ups without the linger
        log.record(make_record())
        await asyncio.sleep(0.02)
    assert await asyncio.to_thread(disk.wrote.wait, 5)
    assert disk.batches == [5]  # written without a flush, in one transaction

    slow = RequestLog(disk, linger_s=60.0)
    slow.record(make_record())
    started = time.monotonic()
    await slow.flush()
    assert time.monotonic() - started < 5 and slow.written == 1
    slow.record(make_record())
    started = time.monotonic()
    await slow.aclose()
    assert time.monotonic() - started < 5 and slow.written == 2
    await log.aclose()
