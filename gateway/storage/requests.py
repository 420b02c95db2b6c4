"""The request log's table: its writers (one per dialect) and its readers.

The columns are the fields of `RequestRecord`, in order (migration 0001 creates them; a new field
needs its own migration). Writers take whole batches from the request log's writer thread
(`gateway.telemetry.requestlog`) and are used from that thread only: SQLite inserts a batch in one
transaction; Postgres copies it with a binary `COPY ... FROM STDIN` in one transaction (the least
CPU per row in the writer thread of the ways bench/requestlog.py measures), on a connection it
opens when first needed and opens again after a failure. A Postgres writer raises `Unavailable`
when the database is away (the log keeps the batch and retries with backoff) and any other error
when the rows themselves are wrong (the log counts them as lost).

Readers (`read_requests`, `find_requests`) return plain dicts, the same on both dialects apart
from booleans (0/1 in SQLite, true/false in Postgres), for `tiergate logs` and for code that asks
about a request after the fact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from gateway.storage.connect import Unavailable, connect_postgres, connect_sqlite, unavailable
from gateway.storage.migrate import migrate
from gateway.storage.url import DatabaseURL
from gateway.telemetry.record import RequestRecord

if TYPE_CHECKING:
    import psycopg

TABLE = "requests"
COLUMN_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RequestRecord))
BOOLEAN_COLUMNS = ("stream", "tokens_estimated", "client_aborted", "partial")
_SQLITE_INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMN_NAMES)}) "
    f"VALUES ({', '.join('?' for _ in COLUMN_NAMES)})"
)
_COPY = f"COPY {TABLE} ({', '.join(COLUMN_NAMES)}) FROM STDIN (FORMAT BINARY)"
_PG_TYPES = {str: "text", int: "int4", float: "float8", bool: "bool"}
"""Binary COPY sends each value in its column's exact type (migration 0001's, checked by
tests/gateway/storage/test_migrations.py)."""


def _python_type(hint: Any) -> type:
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    return hint  # type: ignore[no-any-return]


def _column_types() -> list[type]:
    hints = get_type_hints(RequestRecord)
    return [_python_type(hints[name]) for name in COLUMN_NAMES]


def as_row(rec: RequestRecord) -> tuple[Any, ...]:
    return tuple(getattr(rec, name) for name in COLUMN_NAMES)


def _binary_row(converters: Sequence[Callable[[Any], Any] | None], rec: RequestRecord) -> list[Any]:
    """The row with each float column a float (a record may carry an int 0 there)."""
    row = [getattr(rec, name) for name in COLUMN_NAMES]
    for i, convert in enumerate(converters):
        if convert is not None and row[i] is not None:
            row[i] = convert(row[i])
    return row


class SqliteRequestWriter:
    """Inserts batches into the SQLite log at `path`, creating and migrating the file first (a
    bad path fails here, at start)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        migrate(DatabaseURL.sqlite(path))
        self._conn = connect_sqlite(path)

    def write(self, records: Sequence[RequestRecord]) -> None:
        with self._conn:
            self._conn.executemany(_SQLITE_INSERT, [as_row(r) for r in records])

    def close(self) -> None:
        self._conn.close()


class PostgresRequestWriter:
    """Copies batches into Postgres; the schema must be migrated already (`Database.open`)."""

    def __init__(self, url: DatabaseURL) -> None:
        self.url = url
        self._conn: psycopg.Connection[Any] | None = None
        kinds = _column_types()
        self._types = [_PG_TYPES[k] for k in kinds]
        self._converters = [float if k is float else None for k in kinds]

    def write(self, records: Sequence[RequestRecord]) -> None:
        conn = self._connection()
        try:
            with conn.cursor() as cur, cur.copy(_COPY) as copy:
                copy.set_types(self._types)
                for rec in records:
                    copy.write_row(_binary_row(self._converters, rec))
            conn.commit()
        except Exception as exc:
            if unavailable(exc):
                self._discard()
                raise Unavailable(f"writing the request log to {self.url.redacted}") from exc
            conn.rollback()
            raise

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self._discard()
        if self._conn is None:
            self._conn = connect_postgres(self.url)  # raises Unavailable
        return self._conn

    def _discard(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(
                Exception
            ):  # a broken connection may fail to close: gone anyway
                conn.close()

    def close(self) -> None:
        self._discard()


def open_request_writer(url: DatabaseURL) -> SqliteRequestWriter | PostgresRequestWriter:
    """A writer for `url`, its schema migrated (Postgres: reachable now, or `StorageError`)."""
    if url.dialect == "sqlite":
        return SqliteRequestWriter(url.path)
    migrate(url)
    return PostgresRequestWriter(url)


def read_requests(url: DatabaseURL, since: float | None = None) -> list[dict[str, Any]]:
    """Rows started at or after `since` (unix seconds; None: all), oldest first. Read-only: a
    missing SQLite file raises FileNotFoundError and is not created."""
    where, params = ("", ()) if since is None else (" WHERE started_at >= {p}", (since,))
    return _select(url, f"SELECT * FROM {TABLE}{where} ORDER BY started_at, request_id", params)


def find_requests(url: DatabaseURL, request_id: str) -> list[dict[str, Any]]:
    """Every row with this request id (clients may reuse one), oldest first."""
    return _select(
        url, f"SELECT * FROM {TABLE} WHERE request_id = {{p}} ORDER BY started_at", (request_id,)
    )


def _select(url: DatabaseURL, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    if url.dialect == "sqlite":
        if not url.path.exists():
            raise FileNotFoundError(url.path)
        conn = connect_sqlite(url.path, readonly=True)
        try:
            return [dict(row) for row in conn.execute(sql.format(p="?"), params)]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            conn.close()
    from psycopg.rows import dict_row

    pg = connect_postgres(url, autocommit=True, readonly=True)
    try:
        with pg.cursor(row_factory=dict_row) as cur:
            cur.execute(sql.format(p="%s"), params)
            return list(cur.fetchall())
    finally:
        pg.close()
