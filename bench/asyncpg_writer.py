"""The request log's Postgres writer on asyncpg instead of psycopg: for choosing the driver by
measurement (bench/requestlog.py), not shipped.

The shipped writer (gateway.storage.requests.PostgresRequestWriter) runs psycopg's synchronous
API in the log's writer thread. asyncpg has only an async API, so here the writer thread runs its
own private event loop and drives `copy_records_to_table` (binary COPY) on it; the gateway's event
loop never sees the driver, exactly as with psycopg. Same batches, same thread, other driver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from gateway.storage.requests import COLUMN_NAMES, TABLE, as_row
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
