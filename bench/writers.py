"""The request log's Postgres writer done other ways, for choosing by measurement
(bench/requestlog.py); not shipped.

The shipped writer (gateway.storage.requests.PostgresRequestWriter) runs psycopg's synchronous
API in the log's writer thread with a binary COPY. `AsyncpgWriter` is the same on asyncpg: asyncpg
has only an async API, so the writer thread runs its own private event loop and drives
`copy_records_to_table` (binary COPY) on it; the gateway's event loop never sees the driver,
exactly as with psycopg. `TextCopyWriter` is psycopg with a text COPY (no types to declare).
Same batches, same thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from gateway.storage.connect import connect_postgres
from gateway.storage.requests import COLUMN_NAMES, TABLE, as_row
from gateway.storage.url import DatabaseURL
from gateway.telemetry.record import RequestRecord


class AsyncpgWriter:
    def __init__(self, url: str) -> None:
        self.url = url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: Any = None

    def write(self, records: Sequence[RequestRecord]) -> None:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._copy([as_row(r) for r in records]))

    async def _copy(self, rows: list[tuple[Any, ...]]) -> None:
        import asyncpg  # type: ignore[import-untyped]

        if self._conn is None:
            self._conn = await asyncpg.connect(self.url)
        async with self._conn.transaction():
            await self._conn.copy_records_to_table(TABLE, records=rows, columns=COLUMN_NAMES)

    def close(self) -> None:
        if self._loop is not None:
            if self._conn is not None:
                self._loop.run_until_complete(self._conn.close())
            self._loop.close()


class TextCopyWriter:
    def __init__(self, url: str) -> None:
        self._conn = connect_postgres(DatabaseURL.parse(url))
        self._sql = f"COPY {TABLE} ({', '.join(COLUMN_NAMES)}) FROM STDIN"

    def write(self, records: Sequence[RequestRecord]) -> None:
        with self._conn.cursor() as cur, cur.copy(self._sql) as copy:
            for rec in records:
                copy.write_row(as_row(rec))
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()
