"""Stored responses: the Responses API's `store`, `previous_response_id` and `GET`/`DELETE
/v1/responses/{id}`. The first place the gateway keeps prompt and answer text.

One row per stored response in the `responses` table of the gateway's database (SQLite or
Postgres, `gateway.storage.Database`; columns in `migrations/0002_responses.sql`). Unlike
request-log rows, which a background thread writes in batches and may drop under load, a response
is committed before it returns to the client and never dropped: a response that cannot be stored
is an error for its client.

Only the key that created a response reads or deletes it (`api_key_id`; NULL when the gateway runs
without keys); a response past its `expires_at` (`responses.retention_days`, default 30) is not
served, and the database's hourly tidy-up deletes it. Missing, expired and another key's responses
are the same 404, so an id tells a stranger nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import JSON
from gateway.storage.database import Database
from gateway.storage.records import StoredResponse


def not_found(response_id: str) -> GatewayError:
    return GatewayError(
        404,
        f"no response {response_id[:64]!r}: it does not exist, has expired, or another key "
        "made it",
        code="not_found",
        param="response_id",
    )


class DatabaseResponseStore:
    """The `ResponseStore` of `gateway.chat.responses` on the gateway's database."""

    def __init__(
        self,
        database: Database,
        *,
        retention_days: float | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = database
        self._retention_s = retention_days * 86400 if retention_days else None
        self._clock = clock

    async def save(
        self,
        response: JSON,
        *,
        input_items: list[JSON],
        key_id: str | None,
        request_id: str | None = None,
    ) -> None:
        """Committed when this returns (any error is raised: the response is not answered)."""
        now = self._clock()
        await self._db.put_response(
            StoredResponse(
                id=response["id"],
                api_key_id=key_id,
                created_at=now,
                expires_at=now + self._retention_s if self._retention_s is not None else None,
                input_items=input_items,
                output_items=list(response.get("output") or []),
                deployment=response.get("model"),
                request_id=request_id,
                previous_response_id=response.get("previous_response_id"),
                response=response,
            )
        )

    async def conversation(self, response_id: str, key_id: str | None) -> list[JSON]:
        """The items a new request continues from: the response's input, then its output."""
        stored = await self._find(response_id, key_id)
        return [*stored.input_items, *stored.output_items]

    async def get(self, response_id: str, key_id: str | None) -> JSON:
        stored = await self._find(response_id, key_id)
        return dict(stored.response or {})

    async def delete(self, response_id: str, key_id: str | None) -> None:
        if not await self._db.delete_response(response_id, key_id):
            raise not_found(response_id)

    async def _find(self, response_id: str, key_id: str | None) -> StoredResponse:
        stored = await self._db.get_response(response_id, key_id, now=self._clock())
        if stored is None:
            raise not_found(response_id)
        return stored
