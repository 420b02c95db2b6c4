"""`Database`: what the gateway keeps, for code on the event loop.

Opened once at start (`Database.open`, which runs the migrations, so a database that cannot be
reached or migrated stops the gateway before it listens), shared by everything that stores, closed
at shutdown. Two kinds of writes, two promises:

- request-log rows go through `request_writer()` to the request log's batching thread
  (`gateway.telemetry.requestlog`): off the request path, bounded, lost rows counted;
- everything else (stored responses, feedback, outcomes) is awaited: when `put_response` returns,
  the row is committed; when the database is away it raises `Unavailable` and the caller decides
  (a Responses API call that must be stored fails rather than answer what cannot be continued).

The async methods run `gateway.storage.store.Store` calls on this database's own small thread
pool, never the event loop's default executor (which the router and the request log share).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from gateway.storage.migrate import migrate
from gateway.storage.records import Feedback, Outcome, StoredResponse
from gateway.storage.requests import PostgresRequestWriter, SqliteRequestWriter
from gateway.storage.store import Store
from gateway.storage.url import DatabaseURL

T = TypeVar("T")
log = logging.getLogger(__name__)
PURGE_EVERY_S = 3600.0


class Database:
    def __init__(self, url: DatabaseURL, *, pool_size: int = 4) -> None:
        """Use `Database.open`; this constructor neither connects nor migrates."""
        self.url = url
        self.store = Store(url, pool_size=pool_size)
        """The same calls, synchronous (for commands and threads off the event loop)."""
        workers = 1 if url.dialect == "sqlite" else pool_size
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="tiergate-db")

    @classmethod
    def open(cls, url: DatabaseURL | str, *, pool_size: int = 4) -> Database:
        """Migrate the database at `url` and return a handle (no connection is held yet).

        Raises `StorageError` (`Unavailable` if it cannot be reached), password masked.
        """
        parsed = url if isinstance(url, DatabaseURL) else DatabaseURL.parse(url)
        migrate(parsed)
        return cls(parsed, pool_size=pool_size)

    def request_writer(self) -> SqliteRequestWriter | PostgresRequestWriter:
        """A new writer for the request log's thread (it owns the writer and closes it)."""
        if self.url.dialect == "sqlite":
            return SqliteRequestWriter(self.url.path)
        return PostgresRequestWriter(self.url)

    # --- stored responses ---------------------------------------------------------------------

    async def put_response(self, response: StoredResponse) -> None:
        """Committed when this returns; raises `Unavailable` if the database is away."""
        await self._run(self.store.put_response, response)

    async def get_response(
        self, response_id: str, api_key_id: str | None, *, now: float | None = None
    ) -> StoredResponse | None:
        """None when missing, expired or created by another key (the caller's 404 for all)."""
        return await self._run(self.store.get_response, response_id, api_key_id, now=now)

    async def delete_response(self, response_id: str, api_key_id: str | None) -> bool:
        return await self._run(self.store.delete_response, response_id, api_key_id)

    # --- feedback and outcomes ----------------------------------------------------------------

    async def add_feedback(self, feedback: Feedback) -> int:
        return await self._run(self.store.add_feedback, feedback)

    async def feedback(
        self, *, request_id: str | None = None, since: float | None = None
    ) -> list[Feedback]:
        return await self._run(self.store.feedback, request_id=request_id, since=since)

    async def add_outcome(self, outcome: Outcome) -> int:
        return await self._run(self.store.add_outcome, outcome)

    async def outcomes(
        self,
        *,
        since: float | None = None,
        kind: str | None = None,
        limit: int | None = None,
        now: float | None = None,
    ) -> list[Outcome]:
        return await self._run(self.store.outcomes, since=since, kind=kind, limit=limit, now=now)

    # --- the request log, read; housekeeping --------------------------------------------------

    async def find_requests(self, request_id: str) -> list[dict[str, Any]]:
        return await self._run(self.store.find_requests, request_id)

    async def purge_expired(self, now: float | None = None) -> int:
        return await self._run(self.store.purge_expired, now)

    async def keep_tidy(self, every_s: float = PURGE_EVERY_S) -> None:
        """Delete expired responses and outcomes now and every `every_s` until cancelled (the app
        runs it for its lifetime; replicas doing it at once only delete the same rows). A failure
        is logged and tried again next time, never raised."""
        while True:
            try:
                if purged := await self.purge_expired():
                    log.info("database: deleted %d expired stored responses and outcomes", purged)
            except Exception as exc:
                log.warning("database: could not delete expired rows: %s", exc)
            await asyncio.sleep(every_s)

    async def ping(self) -> None:
        """Raises `Unavailable` unless the database answers now (for readiness checks)."""
        await self._run(self.store.ping)

    async def aclose(self) -> None:
        await self._run(self.store.close)
        self._executor.shutdown(wait=True)

    def close(self) -> None:
        """`aclose` for code without an event loop."""
        self.store.close()
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
