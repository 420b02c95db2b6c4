"""Stored responses: the Responses API's `store`, `previous_response_id` and `GET`/`DELETE
/v1/responses/{id}`. The first place the gateway keeps prompt and answer text.

One row per stored response in the `responses` table of the request log's SQLite file
(`$TIERGATE_LOG_DIR/requests.db`), with the columns the gateway's database package uses for it
(id, api_key_id, created_at, expires_at, request_id, previous_response_id, deployment,
input_items, output_items, response; JSON as text). Unlike request-log rows, which a background
thread writes in batches and may drop under load, a response is written before it returns to the
client (WAL, `synchronous=FULL`: committed when `save` returns) and never dropped: a response that
cannot be stored is an error for its client.

Only the key that created a response reads or deletes it (`api_key_id`; NULL when the gateway runs
without keys); a response past its `expires_at` (`responses.retention_days`, default 30) is not
served, and is deleted by the first save after start, then at most once an hour. Missing, expired
and another key's responses are the same 404, so an id tells a stranger nothing.

The calls run on one thread of their own, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import JSON

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    api_key_id TEXT,
    created_at REAL NOT NULL,
    expires_at REAL,
    request_id TEXT,
    previous_response_id TEXT,
    deployment TEXT,
    input_items TEXT NOT NULL,
    output_items TEXT NOT NULL,
    response TEXT
);
CREATE INDEX IF NOT EXISTS responses_expires_at ON responses (expires_at);
"""
PURGE_EVERY_S = 3600.0
_LIVE = "(expires_at IS NULL OR expires_at > ?)"


def not_found(response_id: str) -> GatewayError:
    return GatewayError(
        404,
        f"no response {response_id!r}: it does not exist, has expired, or another key made it",
        code="not_found",
        param="response_id",
    )


class SqliteResponseStore:
    """Stored responses in one SQLite file; built once at start, closed at shutdown."""

    def __init__(
        self,
        path: Path,
        *,
        retention_days: float | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._retention_s = retention_days * 86400 if retention_days else None
        self._clock = clock
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tiergate-responses")
        self._db: sqlite3.Connection | None = None
        self._purged_at = float("-inf")

    # --- the API's calls ------------------------------------------------------------------------

    async def save(
        self,
        response: JSON,
        *,
        input_items: list[JSON],
        key_id: str | None,
        request_id: str | None = None,
    ) -> None:
        """Committed when this returns (any error is raised: the response is not answered)."""
        await self._run(self._save, response, input_items, key_id, request_id)

    async def conversation(self, response_id: str, key_id: str | None) -> list[JSON]:
        """The items a new request continues from: the response's input, then its output."""
        row = await self._run(self._row, response_id, key_id)
        return [*json.loads(row["input_items"]), *json.loads(row["output_items"])]

    async def get(self, response_id: str, key_id: str | None) -> JSON:
        row = await self._run(self._row, response_id, key_id)
        response: JSON = json.loads(row["response"])
        return response

    async def delete(self, response_id: str, key_id: str | None) -> None:
        if not await self._run(self._delete, response_id, key_id):
            raise not_found(response_id)

    async def aclose(self) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    # --- on the store's thread ------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self._path, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(SCHEMA)
            self._db = db
        return self._db

    def _save(
        self, response: JSON, input_items: list[JSON], key_id: str | None, request_id: str | None
    ) -> None:
        db = self._connection()
        now = self._clock()
        self._purge(db, now)
        expires = now + self._retention_s if self._retention_s is not None else None
        db.execute(
            "INSERT INTO responses (id, api_key_id, created_at, expires_at, request_id, "
            "previous_response_id, deployment, input_items, output_items, response) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                response["id"],
                key_id,
                now,
                expires,
                request_id,
                response.get("previous_response_id"),
                response.get("model"),
                json.dumps(input_items),
                json.dumps(response.get("output") or []),
                json.dumps(response),
            ),
        )

    def _row(self, response_id: str, key_id: str | None) -> sqlite3.Row:
        db = self._connection()
        row: sqlite3.Row | None = db.execute(
            f"SELECT * FROM responses WHERE id = ? AND api_key_id IS ? AND {_LIVE}",
            (response_id, key_id, self._clock()),
        ).fetchone()
        if row is None:
            raise not_found(response_id)
        return row

    def _delete(self, response_id: str, key_id: str | None) -> bool:
        db = self._connection()
        cursor = db.execute(
            "DELETE FROM responses WHERE id = ? AND api_key_id IS ?", (response_id, key_id)
        )
        return cursor.rowcount > 0

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        if now - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = now
        db.execute("DELETE FROM responses WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)
