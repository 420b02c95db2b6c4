"""The gateway's own tables besides the request log, synchronously: stored responses, feedback,
outcomes, and questions about logged requests.

One `Store` per process and URL. SQLite: one connection behind a lock (SQLite has one writer at a
time anyway), WAL mode, `synchronous=FULL` so a stored response survives a machine crash once
`put_response` returns. Postgres: a psycopg pool, each call one transaction on a connection that
is checked before use (a database restart costs no failed call). Every call either commits before
it returns or raises: `Unavailable` when the database is away, the driver's error otherwise.
Nothing here is queued or dropped (that is the request log's trade, not this one's).

The SQL is written once with `?` parameters; the Postgres spelling differs only in the parameter
mark and NULL-safe equality. `gateway.storage.database.Database` runs these calls off the loop.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from gateway.storage.connect import (
    POSTGRES_KWARGS,
    POSTGRES_STATEMENT_TIMEOUT_MS,
    Unavailable,
    connect_sqlite,
    describe,
    unavailable,
)
from gateway.storage.records import Feedback, Outcome, StoredResponse
from gateway.storage.url import DatabaseURL

if TYPE_CHECKING:
    import sqlite3

    from psycopg_pool import ConnectionPool

POOL_TIMEOUT_S = 5.0
"""How long a call waits for a Postgres connection before `Unavailable`."""

_RESPONSE_JSON = ("input_items", "output_items", "response")
_OUTCOME_JSON = ("features", "content")


class Store:
    def __init__(self, url: DatabaseURL, *, pool_size: int = 4) -> None:
        self.url = url
        self.pool_size = pool_size
        self._lock = threading.Lock()
        self._sqlite: sqlite3.Connection | None = None
        self._pool: ConnectionPool[Any] | None = None
        self._closed = False

    # --- stored responses (issue 14) ----------------------------------------------------------

    def put_response(self, response: StoredResponse) -> None:
        """Insert (the id must be new: ids are the gateway's own `resp_...`)."""
        self._insert("responses", self._encode(dataclasses.asdict(response), _RESPONSE_JSON))

    def get_response(
        self, response_id: str, api_key_id: str | None, *, now: float | None = None
    ) -> StoredResponse | None:
        """The response if it exists, belongs to `api_key_id` and has not expired; else None."""
        sql = f"SELECT * FROM responses WHERE id = ? AND api_key_id {self._is} ? AND {_LIVE}"
        moment = time.time() if now is None else now
        rows = self._query(sql, (response_id, api_key_id, moment))
        return StoredResponse(**_decode(rows[0], _RESPONSE_JSON)) if rows else None

    def delete_response(self, response_id: str, api_key_id: str | None) -> bool:
        """Delete it for its own key; False if there was none to delete."""
        sql = f"DELETE FROM responses WHERE id = ? AND api_key_id {self._is} ?"
        return self._execute(sql, (response_id, api_key_id)) > 0

    # --- feedback and outcomes (issue 15) -----------------------------------------------------

    def add_feedback(self, feedback: Feedback) -> int:
        """Insert; returns the new row's id."""
        row = {k: v for k, v in dataclasses.asdict(feedback).items() if k != "id"}
        return self._insert("feedback", row, returning=True)

    def feedback(
        self, *, request_id: str | None = None, since: float | None = None
    ) -> list[Feedback]:
        where, params = _filters(request_id=request_id, since=since)
        rows = self._query(f"SELECT * FROM feedback{where} ORDER BY created_at, id", params)
        return [Feedback(**row) for row in rows]

    def add_outcome(self, outcome: Outcome) -> int:
        """Insert; returns the new row's id."""
        row = {k: v for k, v in dataclasses.asdict(outcome).items() if k != "id"}
        return self._insert("outcomes", self._encode(row, _OUTCOME_JSON), returning=True)

    def outcomes(
        self,
        *,
        since: float | None = None,
        kind: str | None = None,
        limit: int | None = None,
        now: float | None = None,
    ) -> list[Outcome]:
        """Outcomes not yet expired, oldest first."""
        where, params = _filters(since=since, kind=kind)
        where = f"{where} AND {_LIVE}" if where else f" WHERE {_LIVE}"
        params = (*params, time.time() if now is None else now)
        sql = f"SELECT * FROM outcomes{where} ORDER BY created_at, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._query(sql, params)
        return [Outcome(**_decode(row, _OUTCOME_JSON)) for row in rows]

    # --- the request log, read ----------------------------------------------------------------

    def find_requests(self, request_id: str) -> list[dict[str, Any]]:
        """The request log's rows for this id, oldest first (rows arrive up to a linger late)."""
        return self._query(
            "SELECT * FROM requests WHERE request_id = ? ORDER BY started_at", (request_id,)
        )

    # --- housekeeping -------------------------------------------------------------------------

    def purge_expired(self, now: float | None = None) -> int:
        """Delete stored responses and outcomes past their `expires_at`; how many went."""
        moment = time.time() if now is None else now
        sql = "DELETE FROM {} WHERE expires_at IS NOT NULL AND expires_at <= ?"
        return sum(self._execute(sql.format(t), (moment,)) for t in ("responses", "outcomes"))

    def ping(self) -> None:
        """Raises `Unavailable` unless the database answers now."""
        self._query("SELECT 1 AS one", ())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._sqlite is not None:
                self._sqlite.close()
                self._sqlite = None
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    # --- plumbing -----------------------------------------------------------------------------

    @property
    def _is(self) -> str:
        """NULL-safe equality (a key id may be NULL when the gateway runs without keys)."""
        return "IS" if self.url.dialect == "sqlite" else "IS NOT DISTINCT FROM"

    def _insert(self, table: str, row: Mapping[str, Any], *, returning: bool = False) -> int:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
        if returning:
            with self._transaction() as conn:
                cur = conn.execute(self._sql(sql + " RETURNING id"), tuple(row.values()))
                return int(cur.fetchone()["id"])
        self._execute(sql, tuple(row.values()))
        return 0

    def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._transaction() as conn:
            return int(conn.execute(self._sql(sql), params).rowcount)

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._transaction() as conn:
            return [dict(row) for row in conn.execute(self._sql(sql), params).fetchall()]

    def _encode(self, row: dict[str, Any], json_fields: tuple[str, ...]) -> dict[str, Any]:
        """JSON fields as SQLite's TEXT or psycopg's JSONB adapter."""
        out = dict(row)
        for name in json_fields:
            if out.get(name) is None:
                continue
            if self.url.dialect == "sqlite":
                out[name] = json.dumps(out[name], separators=(",", ":"))
            else:
                from psycopg.types.json import Jsonb

                out[name] = Jsonb(out[name])
        return out

    def _sql(self, sql: str) -> str:
        return sql if self.url.dialect == "sqlite" else sql.replace("?", "%s")

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A connection in a transaction: committed when the block ends, rolled back if it
        raises; database-is-away errors become `Unavailable`."""
        if self._closed:
            raise Unavailable(f"the store for {self.url.redacted} is closed")
        if self.url.dialect == "sqlite":
            with self._lock:
                conn = self._sqlite_connection()
                with conn:
                    yield conn
            return
        from psycopg_pool import PoolTimeout

        try:
            with self._postgres_pool().connection(timeout=POOL_TIMEOUT_S) as conn:
                yield conn
        except PoolTimeout as exc:
            raise Unavailable(f"no connection to {self.url.redacted}: {describe(exc)}") from exc
        except Exception as exc:
            if unavailable(exc) and not isinstance(exc, Unavailable):
                raise Unavailable(f"the database at {self.url.redacted}: {describe(exc)}") from exc
            raise

    def _sqlite_connection(self) -> sqlite3.Connection:
        if self._sqlite is None:
            self._sqlite = connect_sqlite(self.url.path)
            self._sqlite.execute("PRAGMA synchronous=FULL")
        return self._sqlite

    def _postgres_pool(self) -> ConnectionPool[Any]:
        with self._lock:
            if self._pool is None:
                from psycopg.rows import dict_row
                from psycopg_pool import ConnectionPool

                def configure(conn: Any) -> None:
                    conn.execute(f"SET statement_timeout = {POSTGRES_STATEMENT_TIMEOUT_MS}")
                    conn.commit()

                self._pool = ConnectionPool(
                    self.url.url,
                    kwargs={**POSTGRES_KWARGS, "row_factory": dict_row},
                    min_size=1,
                    max_size=self.pool_size,
                    open=False,
                    configure=configure,
                    check=ConnectionPool.check_connection,
                    timeout=POOL_TIMEOUT_S,
                    name="tiergate",
                )
                self._pool.open(wait=False)
            return self._pool


_LIVE = "(expires_at IS NULL OR expires_at > ?)"


def _filters(**conditions: Any) -> tuple[str, tuple[Any, ...]]:
    """` WHERE a = ? AND created_at >= ?` for the conditions given (None: no condition)."""
    parts, params = [], []
    for name, value in conditions.items():
        if value is None:
            continue
        parts.append("created_at >= ?" if name == "since" else f"{name} = ?")
        params.append(value)
    return (" WHERE " + " AND ".join(parts) if parts else ""), tuple(params)


def _decode(row: dict[str, Any], json_fields: tuple[str, ...]) -> dict[str, Any]:
    out = dict(row)
    for name in json_fields:
        value = out.get(name)
        if isinstance(value, str | bytes):  # SQLite's TEXT; Postgres' JSONB arrives decoded
            out[name] = json.loads(value)
    if isinstance(out.get("embedding"), memoryview):
        out["embedding"] = bytes(cast(memoryview, out["embedding"]))
    return out
