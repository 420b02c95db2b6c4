"""The request log: one row per accepted request, written off the event loop.

This module owns the bounded queue between the event loop and the writer thread, and the rules for
losing rows: when the writer falls behind (a slow disk, a locked or slow database) and the queue is
full, `record` drops the row instead of waiting, counts it
(`tiergate_request_log_dropped_total{reason="queue_full"}`) and logs a warning; a write that fails
because the rows are wrong is counted and logged the same way (`write_error`). When the database
is away (Postgres down, restarting, unreachable: the writer raises `Unavailable`), the writer keeps
its batch and retries with backoff while new rows wait in the queue; only what overflows the queue
is lost, and counted. A response is never slowed by the log. `aclose` (at shutdown) writes
everything still queued before returning; if the database stays away past `close_timeout_s`, what
is left is counted as lost (`unavailable`) and the process can exit.

The table and its writers belong to `gateway.storage` (SQLite in WAL mode, so `tiergate logs` can
read while the gateway writes; or Postgres, shared by every replica). No prompt or completion text
is stored: a record does not carry any.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from gateway.storage.connect import Unavailable, describe
from gateway.storage.requests import COLUMN_NAMES, SqliteRequestWriter, open_request_writer
from gateway.storage.url import DB_FILENAME, DatabaseURL
from gateway.telemetry.record import RequestRecord

__all__ = ["COLUMN_NAMES", "DB_FILENAME", "RequestLog", "RowWriter", "SqliteWriter"]

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 10_000
_BATCH = 512
# The writer collects rows for this long after the first one before writing them together: one
# wake-up and one transaction per interval instead of one per request. Each wake-up takes the GIL
# from the event loop; lingering cut the gateway's CPU per request by about a quarter at low load
# (bench/RESULTS.md). Rows reach the file at most this much later; `flush` and shutdown don't wait.
# TIERGATE_REQUEST_LOG_LINGER_S sets it (0: write each row as it comes).
LINGER_S = 0.25
_WARN_EVERY_S = 10.0
CLOSE_TIMEOUT_S = 10.0
"""At shutdown, how long the writer keeps retrying a database that is away before giving up."""
RETRY_BASE_S = 0.1
RETRY_CAP_S = 5.0
"""Backoff between attempts while the database is away: full jitter, doubling up to the cap."""

SqliteWriter = SqliteRequestWriter
"""The SQLite writer under its historical name."""


class RowWriter(Protocol):
    """Where batches of records go: `gateway.storage`'s writers, slow or broken fakes in tests.
    `write` raises `Unavailable` when the database is away (the batch is retried), anything else
    when the rows cannot be written (they are counted as lost)."""

    def write(self, records: Sequence[RequestRecord]) -> None: ...

    def close(self) -> None: ...


_STOP = object()


class RequestLog:
    """The request-log sink: `record` enqueues and returns; a daemon thread writes in batches.

    `on_written(n)` and `on_dropped(n, reason)` let the metrics count rows; they are called from
    the writer thread (for writes and write errors) or the event loop (for a full queue).
    """

    def __init__(
        self,
        writer: RowWriter,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        linger_s: float = LINGER_S,
        on_written: Callable[[int], None] | None = None,
        on_dropped: Callable[[int, str], None] | None = None,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> None:
        self._writer = writer
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._linger_s = linger_s
        self._hurry = threading.Event()  # set by flush, close and a filling queue: stop lingering
        self._hurry_at = max(1, min(_BATCH, queue_size // 2))
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._last_warning = 0.0
        self._unwarned = 0
        self.written = 0
        self._dropped = {"queue_full": 0, "write_error": 0, "closed": 0, "unavailable": 0}
        self._closed = False
        self._close_timeout_s = close_timeout_s
        self._give_up_at: float | None = None  # set at close: retry a missing database until then
        self._closing = threading.Event()  # wakes a writer waiting out a backoff
        self._rng = random.Random()
        self._thread = threading.Thread(target=self._run, name="tiergate-request-log", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, where: Path | DatabaseURL, **kwargs: Any) -> RequestLog:
        """Open the log at a SQLite file or a database URL, migrating its schema; a bad path or
        an unreachable database fails here, at start (`gateway.storage.StorageError`)."""
        url = where if isinstance(where, DatabaseURL) else DatabaseURL.sqlite(where)
        return cls(open_request_writer(url), **kwargs)

    @property
    def dropped(self) -> int:
        """Rows lost so far, whatever the reason."""
        return sum(self._dropped.values())

    # --- Telemetry -----------------------------------------------------------------------------

    def request_started(self) -> None:
        return None

    def record(self, rec: RequestRecord) -> None:
        if self._closed:
            self._drop(1, "closed")
            return
        try:
            self._queue.put_nowait(rec)
        except queue.Full:
            self._drop(1, "queue_full")
        if self._queue.qsize() >= self._hurry_at:  # a linger must never fill the queue
            self._hurry.set()

    async def aclose(self) -> None:
        """Write every queued row, then stop the thread and close the database."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._stop_and_join)

    async def flush(self) -> None:
        """Wait until every row queued so far is committed (for tests and `aclose`)."""
        done = threading.Event()
        await asyncio.to_thread(self._queue.put, done)
        self._hurry.set()
        await asyncio.to_thread(done.wait)

    def close(self) -> None:
        """Synchronous `aclose` for code without an event loop."""
        if not self._closed:
            self._closed = True
            self._stop_and_join()

    # --- writer thread -------------------------------------------------------------------------

    def _stop_and_join(self) -> None:
        self._give_up_at = time.monotonic() + self._close_timeout_s
        self._closing.set()
        self._queue.put(_STOP)
        self._hurry.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                first = self._queue.get()
                batch: list[RequestRecord] = []
                markers: list[threading.Event] = []
                stop = self._take(first, batch, markers)
                # Linger only while the queue is short (a backlog is written at once).
                if not stop and not markers and self._queue.qsize() < self._hurry_at:
                    self._hurry.wait(self._linger_s)
                self._hurry.clear()
                while not stop and len(batch) < _BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    stop = self._take(item, batch, markers)
                if batch:
                    self._write(batch)
                for marker in markers:
                    marker.set()
                if stop:
                    return
        finally:
            self._writer.close()

    @staticmethod
    def _take(item: object, batch: list[RequestRecord], markers: list[threading.Event]) -> bool:
        if item is _STOP:
            return True
        if isinstance(item, threading.Event):
            markers.append(item)
        elif isinstance(item, RequestRecord):
            batch.append(item)
        return False

    def _write(self, batch: list[RequestRecord]) -> None:
        attempt = 0
        while True:
            try:
                self._writer.write(batch)
                break
            except Unavailable as exc:
                if self._give_up_at is not None and time.monotonic() >= self._give_up_at:
                    self._give_up(len(batch), exc)
                    return
                self._wait_for_database(attempt, len(batch), exc)
                attempt += 1
            except Exception:
                logger.exception("request log: failed to write %d rows; they are lost", len(batch))
                self._drop(len(batch), "write_error", warn=False)
                return
        if attempt:
            logger.warning("request log: the database is back; writing again")
        self.written += len(batch)
        if self._on_written is not None:
            self._on_written(len(batch))

    def _wait_for_database(self, attempt: int, held: int, exc: Unavailable) -> None:
        """Back off before retrying a batch the database could not take (full jitter)."""
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            logger.warning(
                "request log: %s (%s); %d rows held, %d queued, retrying",
                exc,
                describe(exc.__cause__ or exc),
                held,
                self._queue.qsize(),
            )
            self._last_warning = now
        delay = self._rng.uniform(RETRY_BASE_S / 2, min(RETRY_CAP_S, RETRY_BASE_S * 2**attempt))
        if self._give_up_at is None:
            self._closing.wait(delay)  # a shutdown starting now retries at once
        else:
            time.sleep(min(delay, max(0.0, self._give_up_at - now)))

    def _give_up(self, held: int, exc: Unavailable) -> None:
        """Shutting down and the database is still away: count the batch and the queue as lost."""
        lost = held
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, RequestRecord):
                lost += 1
            elif isinstance(item, threading.Event):
                item.set()
            elif item is _STOP:
                self._queue.put(_STOP)  # the run loop still needs to see it
                break
        logger.error(
            "request log: shutting down and %s for %.0f s; %d rows are lost",
            exc,
            self._close_timeout_s,
            lost,
        )
        self._drop(lost, "unavailable", warn=False)

    def _drop(self, n: int, reason: str, *, warn: bool = True) -> None:
        """Count lost rows and say so in the log, at most once every ten seconds."""
        # One key per thread: `queue_full` and `closed` on the loop, the others in the writer.
        self._dropped[reason] += n
        if self._on_dropped is not None:
            self._on_dropped(n, reason)
        if not warn:
            return
        self._unwarned += n
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            logger.warning(
                "request log: dropped %d rows (%s): the writer is behind (a slow disk, or a slow "
                "or missing database); raise TIERGATE_REQUEST_LOG_QUEUE_SIZE, or move "
                "TIERGATE_LOG_DIR to a faster disk",
                self._unwarned,
                reason,
            )
            self._unwarned = 0
            self._last_warning = now
