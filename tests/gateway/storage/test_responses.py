"""Stored responses: written before the response returns, continued with previous_response_id,
read and deleted by the key that made them only, gone after their retention, off gateway-wide."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.storage import Database, DatabaseURL
from gateway.storage.responses import DatabaseResponseStore
from tests.support.gateway import RunningGateway, start_gateway, two_tier_config
from tests.support.upstream import FakeUpstream, Reply

KEY_A, KEY_B = "sk-store-a-0123456789", "sk-store-b-0123456789"


def keyed(small: FakeUpstream, large: FakeUpstream, **responses: Any) -> dict[str, Any]:
    config: dict[str, Any] = two_tier_config(small.url, large.url)
    config["keys"] = [
        {"id": "a", "key_sha256": hashlib.sha256(KEY_A.encode()).hexdigest()},
        {"id": "b", "key_sha256": hashlib.sha256(KEY_B.encode()).hexdigest()},
    ]
    if responses:
        config["responses"] = responses
    return config


@pytest.fixture
def gw(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> Iterator[RunningGateway]:
    running = start_gateway(tmp_path, keyed(small, large))
    yield running
    running.stop()


def call(
    gw: RunningGateway, method: str, path: str, key: str = KEY_A, **kw: Any
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    return httpx.request(method, gw.url + path, headers=headers, timeout=30, **kw)


def test_a_stored_response_continues_a_conversation(
    gw: RunningGateway, tmp_path: Path, small: FakeUpstream
) -> None:
    small.enqueue(Reply(text="Hello Ada."), Reply(text="Your name is Ada."))
    first = call(gw, "POST", "/responses", json={"model": "auto", "input": "I am Ada."}).json()
    assert first["store"] is True
    # Written before the response returned: the row is there now.
    rows = sqlite3.connect(tmp_path / "logs" / "requests.db").execute(
        "SELECT id, api_key_id, deployment, expires_at - created_at FROM responses"
    ).fetchall()
    assert rows == [(first["id"], "a", "small-a", pytest.approx(30 * 86400))]
    body = {"model": "auto", "input": "Who am I?", "previous_response_id": first["id"]}
    second = call(gw, "POST", "/responses", json=body).json()
    assert second["previous_response_id"] == first["id"]
    sent = small.history[1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == "Hello Ada." and sent[2]["content"] == "Who am I?"
    got = call(gw, "GET", f"/responses/{second['id']}").json()
    assert got == second


def test_a_streamed_response_is_stored_before_response_completed(
    gw: RunningGateway, small: FakeUpstream
) -> None:
    r = call(gw, "POST", "/responses", json={"model": "auto", "input": "hi", "stream": True})
    lines = [line for line in r.text.splitlines() if line.startswith("data: ")]
    final = json.loads(lines[-1][6:])
    assert final["type"] == "response.completed"
    got = call(gw, "GET", f"/responses/{final['response']['id']}").json()
    assert got["output"] == final["response"]["output"]


def test_only_the_creating_key_sees_or_deletes_a_response(gw: RunningGateway) -> None:
    made = call(gw, "POST", "/responses", json={"model": "auto", "input": "x"}).json()
    for method in ("GET", "DELETE"):
        r = call(gw, method, f"/responses/{made['id']}", key=KEY_B)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    cont = {"model": "auto", "input": "y", "previous_response_id": made["id"]}
    assert call(gw, "POST", "/responses", key=KEY_B, json=cont).status_code == 404
    assert call(gw, "DELETE", f"/responses/{made['id']}").json()["deleted"] is True
    assert call(gw, "GET", f"/responses/{made['id']}").status_code == 404
    assert call(gw, "DELETE", f"/responses/{made['id']}").status_code == 404
    assert call(gw, "GET", "/responses/resp_nothing").status_code == 404


def test_store_false_keeps_nothing(gw: RunningGateway, tmp_path: Path) -> None:
    made = call(gw, "POST", "/responses", json={"model": "auto", "input": "x", "store": False})
    assert made.json()["store"] is False
    assert call(gw, "GET", f"/responses/{made.json()['id']}").status_code == 404


def test_storage_off_gateway_wide(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    running = start_gateway(tmp_path, keyed(small, large, store=False))
    try:
        made = call(running, "POST", "/responses", json={"model": "auto", "input": "x"}).json()
        assert made["store"] is False
        cont = {"model": "auto", "input": "y", "previous_response_id": made["id"]}
        refused = call(running, "POST", "/responses", json=cont)
        assert refused.status_code == 400
        assert "responses.store is false" in refused.json()["error"]["message"]
        assert call(running, "GET", f"/responses/{made['id']}").status_code == 404
    finally:
        running.stop()


async def test_responses_expire_after_their_retention(db_url: DatabaseURL) -> None:
    now = [1000.0]
    database = Database.open(db_url)
    store = DatabaseResponseStore(database, retention_days=1, clock=lambda: now[0])
    try:
        response = {"id": "resp_1", "model": "m", "output": [{"type": "message"}]}
        await store.save(response, input_items=[{"role": "user", "content": "q"}], key_id=None)
        assert await store.get("resp_1", None) == response
        items = await store.conversation("resp_1", None)
        assert items == [{"role": "user", "content": "q"}, {"type": "message"}]
        now[0] += 86400 + 1
        with pytest.raises(Exception, match="no response 'resp_1'"):
            await store.get("resp_1", None)
        await store.save({**response, "id": "resp_2"}, input_items=[], key_id=None)
        assert await database.purge_expired(now=now[0]) == 1  # the hourly tidy-up's work
        assert await store.get("resp_2", None) == {**response, "id": "resp_2"}
    finally:
        await database.aclose()
