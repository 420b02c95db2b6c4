"""The tables other features use (stored responses, feedback, outcomes) through `Database`, the
same on SQLite and Postgres; and what a caller sees when Postgres goes away and comes back."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time

import pytest

from gateway.storage import (
    Database,
    DatabaseURL,
    Feedback,
    Outcome,
    StoredResponse,
    Unavailable,
)
from tests.support.postgres import PostgresServer
from tests.support.records import make_record
from tests.support.tcpproxy import TcpProxy


def response(id: str = "resp_1", key: str | None = "key-a", **kw: object) -> StoredResponse:
    fields: dict[str, object] = {
        "id": id,
        "api_key_id": key,
        "created_at": time.time(),
        "expires_at": time.time() + 3600,
        "input_items": [{"role": "user", "content": [{"type": "input_text", "text": "hé ✓"}]}],
        "output_items": [{"type": "message", "content": [{"type": "output_text", "text": "4"}]}],
        "deployment": "small-a",
        "request_id": "req-1",
        "response": {"id": id, "object": "response", "status": "completed", "usage": {"x": 1}},
    }
    fields.update(kw)
    return StoredResponse(**fields)  # type: ignore[arg-type]


async def test_a_stored_response_comes_back_whole_for_its_own_key_only(
    db_url: DatabaseURL,
) -> None:
    db = Database.open(db_url)
    try:
        stored = response()
        await db.put_response(stored)
        assert await db.get_response("resp_1", "key-a") == stored
        assert await db.get_response("resp_1", "key-b") is None
        assert await db.get_response("resp_1", None) is None
        assert await db.get_response("resp_missing", "key-a") is None
        assert not await db.delete_response("resp_1", "key-b")
        assert await db.delete_response("resp_1", "key-a")
        assert await db.get_response("resp_1", "key-a") is None
    finally:
        await db.aclose()


async def test_without_keys_a_response_belongs_to_no_key(db_url: DatabaseURL) -> None:
    db = Database.open(db_url)
    try:
        await db.put_response(response(key=None))
        assert (await db.get_response("resp_1", None)) is not None
        assert await db.get_response("resp_1", "key-a") is None
    finally:
        await db.aclose()


async def test_expired_rows_are_never_served_and_purge_deletes_them(db_url: DatabaseURL) -> None:
    db = Database.open(db_url)
    now = time.time()
    try:
        await db.put_response(response("resp_old", expires_at=now - 1))
        await db.put_response(response("resp_new", expires_at=now + 60))
        await db.put_response(response("resp_kept", expires_at=None))
        await db.add_outcome(Outcome("r-old", "shadow", now - 10, expires_at=now - 1))
        await db.add_outcome(Outcome("r-new", "shadow", now, expires_at=now + 60))
        assert await db.get_response("resp_old", "key-a") is None
        assert await db.get_response("resp_new", "key-a") is not None
        assert [o.request_id for o in await db.outcomes()] == ["r-new"]
        assert await db.purge_expired() == 2
        assert await db.get_response("resp_new", "key-a", now=now + 120) is None
        assert await db.purge_expired(now=now + 120) == 2
        assert await db.get_response("resp_kept", "key-a", now=now + 10**9) is not None
    finally:
        await db.aclose()


async def test_keep_tidy_purges_in_the_background(db_url: DatabaseURL) -> None:
    db = Database.open(db_url)
    try:
        await db.put_response(response("resp_old", expires_at=time.time() - 1))
        await db.put_response(response("resp_new"))
        # Asked as of long ago, a row that still exists is found even though it has expired.
        assert await db.get_response("resp_old", "key-a", now=0) is not None
        tidy = asyncio.create_task(db.keep_tidy(every_s=0.05))
        try:
            for _ in range(100):
                if await db.get_response("resp_old", "key-a", now=0) is None:
                    break
                await asyncio.sleep(0.05)
        finally:
            tidy.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tidy
        assert await db.get_response("resp_old", "key-a", now=0) is None
        assert await db.get_response("resp_new", "key-a") is not None
    finally:
        await db.aclose()


async def test_a_duplicate_response_id_is_refused_not_overwritten(db_url: DatabaseURL) -> None:
    db = Database.open(db_url)
    try:
        await db.put_response(response())
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await db.put_response(response(deployment="other"))
        got = await db.get_response("resp_1", "key-a")
        assert got is not None and got.deployment == "small-a"
    finally:
        await db.aclose()


async def test_feedback_and_outcomes_round_trip(db_url: DatabaseURL) -> None:
    db = Database.open(db_url)
    embedding = struct.pack("<4f", 0.25, -1.0, 3.5, 0.0)
    try:
        first = await db.add_feedback(Feedback("key-a", 1.0, time.time(), request_id="req-1"))
        second = await db.add_feedback(Feedback("key-a", 0.0, time.time(), response_id="resp_1"))
        assert second > first
        got = await db.feedback(request_id="req-1")
        assert [(f.score, f.api_key_id, f.id) for f in got] == [(1.0, "key-a", first)]
        assert len(await db.feedback()) == 2
        outcome = Outcome(
            request_id="req-1",
            kind="shadow",
            created_at=time.time(),
            expires_at=time.time() + 60,
            policy="balanced",
            category="math",
            weak_tier="small",
            strong_tier="large",
            judge="judge-a",
            verdict=0.0,
            embedding=embedding,
            embedding_model="all-MiniLM-L6-v2",
            features={"length": 12, "hedges": 0, "final_answer": None},
            content={"prompt": "2+2?", "weak": "5", "strong": "4"},
        )
        new_id = await db.add_outcome(outcome)
        (back,) = await db.outcomes(kind="shadow")
        assert back == outcome.__class__(**{**outcome.__dict__, "id": new_id})
        assert struct.unpack("<4f", back.embedding or b"") == (0.25, -1.0, 3.5, 0.0)
        assert await db.outcomes(kind="feedback") == []
        assert await db.outcomes(since=time.time() + 10) == []
    finally:
        await db.aclose()


async def test_find_requests_reads_the_log(db_url: DatabaseURL) -> None:
    db = Database.open(db_url)
    try:
        writer = db.request_writer()
        writer.write([make_record(request_id="mine", api_key_id="key-a"), make_record()])
        writer.close()
        (row,) = await db.find_requests("mine")
        assert row["api_key_id"] == "key-a"
        assert await db.find_requests("nobody") == []
        await db.ping()
    finally:
        await db.aclose()


async def test_postgres_away_raises_unavailable_then_recovers(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """What a Responses API call would see: a clear `Unavailable` while Postgres is unreachable
    (never a hang, never a silent drop), and success again as soon as it is back."""
    direct = DatabaseURL.parse(postgres_url)
    Database.open(direct).close()  # migrated
    proxy = TcpProxy(postgres_server.port).start()
    db = Database(
        DatabaseURL.parse(postgres_url.replace(f":{postgres_server.port}/", f":{proxy.port}/"))
    )
    try:
        await db.put_response(response("resp_before"))
        proxy.down()
        started = time.monotonic()
        with pytest.raises(Unavailable, match=r"postgresql://postgres@127\.0\.0\.1"):
            await db.put_response(response("resp_during"))
        assert time.monotonic() - started < 15
        proxy.up()
        await db.put_response(response("resp_after"))
        assert await db.get_response("resp_after", "key-a") is not None
        assert await db.get_response("resp_during", "key-a") is None
    finally:
        await db.aclose()
        proxy.down()
