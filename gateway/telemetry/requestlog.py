"""The request log: one SQLite row per accepted request, written off the event loop.

This module owns the table (its columns are the fields of `RequestRecord`, so the two cannot drift),
the bounded queue between the event loop and the writer thread, and the rules for losing rows:
when the writer falls behind (a slow disk, a locked database) and the queue is full, `record` drops
the row instead of waiting, counts it (`tiergate_request_log_dropped_total{reason="queue_full"}`)
and logs a warning; a failed write is counted and logged the same way. A response is never slowed
by the log. `aclose` (at shutdown) writes everything still queued before returning.

The database is in WAL mode so `tiergate logs` can read while the gateway writes. No prompt or
completion text is stored: a record does not carry any.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import sqlite3
import threading
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, Union, get_args, get_origin, get_type_hints

from gateway.telemetry.record import RequestRecord

logger = logging.getLogger(__name__)

DB_FILENAME = "requests.db"
TABLE = "requests"
DEFAULT_QUEUE_SIZE = 10_000
_BATCH = 512
# The writer collects rows for this long after the first one before writing them together: one
# wake-up and one transaction per interval instead of one per request. Each wake-up takes the GIL
# from the event loop; lingering cut the gateway's CPU per request by about a quarter at low load
# (bench/RESULTS.md). Rows reach the file at most this much later; `flush` and shutdown don't wait.
# TIERGATE_REQUEST_LOG_LINGER_S sets it (0: write each row as it comes).
LINGER_S = 0.25
_WARN_EVERY_S = 10.0


def _sql_type(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    if hint is bool or hint is int:
        return "INTEGER"
    if hint is float:
        return "REAL"
    return "TEXT"


def _columns() -> list[tuple[str, str]]:
    hints = get_type_hints(RequestRecord)
    return [(f.name, _sql_type(hints[f.name])) for f in dataclasses.fields(RequestRecord)]


COLUMNS: tuple[tuple[str, str], ...] = tuple(_columns())
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)
_INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMN_NAMES)}) "
    f"VALUES ({', '.join('?' for _ in COLUMN_NAMES)})"
)


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the log; read-only connections (the `logs` commands) never create or lock it."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    else:
        conn = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the table, or add columns a newer `RequestRecord` has, so old logs keep working."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # No key on request_id: clients may send their own `x-request-id`, and a client that reuses
    # one must not overwrite an earlier row (rows = requests accepted).
    cols = ", ".join(f"{name} {sql}" for name, sql in COLUMNS)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({cols})")
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")}
    for name, sql in COLUMNS:
        if name not in have:
            conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {sql}")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_started_at ON {TABLE} (started_at)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_request_id ON {TABLE} (request_id)")
    conn.commit()


def as_row(rec: RequestRecord) -> tuple[Any, ...]:
    return tuple(getattr(rec, name) for name in COLUMN_NAMES)


class RowWriter(Protocol):
    """Where batches of records go; the SQLite writer in production, slow fakes in tests."""

    def write(self, records: Sequence[RequestRecord]) -> None: ...

    def close(self) -> None: ...


class SqliteWriter:
    """Writes batches in one transaction each; used only from the log's writer thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = connect(path)
        ensure_schema(self._conn)

    def write(self, records: Sequence[RequestRecord]) -> None:
        with self._conn:
            self._conn.executemany(_INSERT, [as_row(r) for r in records])

    def close(self) -> None:
        self._conn.close()


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
        self._dropped = {"queue_full": 0, "write_error": 0, "closed": 0}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tiergate-request-log", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, path: Path, **kwargs: Any) -> RequestLog:
        """Open (creating if needed) the SQLite log at `path`; a bad path fails here, at start."""
        return cls(SqliteWriter(path), **kwargs)

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
        try:
            self._writer.write(batch)
        except Exception:
            logger.exception("request log: failed to write %d rows; they are lost", len(batch))
            self._drop(len(batch), "write_error", warn=False)
            return
        self.written += len(batch)
        if self._on_written is not None:
            self._on_written(len(batch))

    def _drop(self, n: int, reason: str, *, warn: bool = True) -> None:
        """Count lost rows and say so in the log, at most once every ten seconds."""
        # One key per thread: `queue_full` and `closed` on the loop, `write_error` in the writer.
        self._dropped[reason] += n
        if self._on_dropped is not None:
            self._on_dropped(n, reason)
        if not warn:
            return
        self._unwarned += n
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            logger.warning(
                "request log: dropped %d rows (%s): the writer is behind; raise "
                "TIERGATE_REQUEST_LOG_QUEUE_SIZE or move TIERGATE_LOG_DIR to a faster disk",
                self._unwarned,
                reason,
            )
            self._unwarned = 0
            self._last_warning = now
