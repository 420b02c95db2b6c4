"""The routes in process (httpx.ASGITransport): what a client sees in headers and errors, and that
each route gets its services through `gateway.deps`."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.gateway import chat, two_tier_config
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import FakeUpstream

KEY, ADMIN = "sk-user-0000", "sk-admin-0000"


def keyed(small: FakeUpstream, large: FakeUpstream) -> dict[str, object]:
    cfg = two_tier_config(small.url, large.url)
    cfg["keys"] = [
        {"id": "user", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest()},
        {"id": "admin", "key_sha256": hashlib.sha256(ADMIN.encode()).hexdigest(), "admin": True},
    ]
    return cfg


async def test_an_answer_carries_its_routing_headers(inproc: InProcess) -> None:
    client, records = inproc.client, inproc.records
    r = await client.post("/v1/chat/completions", json=chat(), headers={"x-request-id": "req-abc"})
    assert r.status_code == 200
    assert r.json()["model"] == "small-a"
    assert r.headers["x-request-id"] == "req-abc"
    assert r.headers["x-tiergate-route"] == "small"
    assert r.headers["x-tiergate-deployment"] == "small-a"
    assert r.headers["x-tiergate-policy"] == "balanced"
    assert r.headers["x-tiergate-score"] == "0.1000"
    assert "x-tiergate-fallback" not in r.headers
    (rec,) = records.items
    assert rec.request_id == "req-abc" and rec.served_tier == "small"
    assert r.headers["x-tiergate-cost-usd"] == f"{rec.cost_usd:.10f}"
    assert records.started == 1


async def test_errors_are_openai_envelopes_with_the_request_id(inproc: InProcess) -> None:
    client, records = inproc.client, inproc.records
    missing = await client.post("/v1/chat/completions", json=chat(model="nope"))
    tier = await client.post(
        "/v1/chat/completions", json=chat(), headers={"x-tiergate-tier": "medium"}
    )
    body = await client.post("/v1/chat/completions", json={"model": "auto"})
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert error["type"] == "not_found_error" and "auto:balanced" in error["message"]
    assert missing.headers["x-request-id"] == records.items[0].request_id
    assert tier.status_code == 400
    assert tier.json()["error"] == {
        "message": "header x-tiergate-tier must be one of ['small', 'large']; got 'medium'",
        "type": "invalid_request_error",
        "param": "x-tiergate-tier",
        "code": "invalid_tier",
    }
    assert body.status_code == 400 and body.json()["error"]["param"] == "messages"
    assert [r.status_code for r in records.items] == [404, 400]  # a body error is no request


async def test_a_missing_key_is_401_before_the_body_is_read(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    """The key comes from the headers, before the body (issue 13, item 4): a client without one
    cannot make the gateway parse anything, and learns nothing about the body's shape."""
    user = {"authorization": f"Bearer {KEY}"}
    async with in_process(tmp_path, keyed(small, large)) as client:
        bad = await client.post("/v1/chat/completions", json={"model": "auto"})
        bad_with_key = await client.post(
            "/v1/chat/completions", json={"model": "auto"}, headers=user
        )
        anonymous = await client.post("/v1/chat/completions", json=chat())
        models = await client.get("/v1/models")
        listed = await client.get("/v1/models", headers=user)
    assert bad.status_code == 401 and bad_with_key.status_code == 400
    assert anonymous.status_code == 401 and models.status_code == 401
    assert anonymous.json()["error"]["code"] == "invalid_api_key"
    assert {m["id"] for m in listed.json()["data"]} >= {"auto", "small-a", "large-a"}


async def test_admin_usage_needs_an_admin_key_and_asks_the_quota(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    async with in_process(tmp_path, keyed(small, large)) as client:
        user = {"authorization": f"Bearer {KEY}"}
        admin = {"authorization": f"Bearer {ADMIN}"}
        assert (await client.post("/v1/chat/completions", json=chat(), headers=user)).is_success
        refused = await client.get("/admin/usage/user", headers=user)
        usage = await client.get("/admin/usage/user", headers=admin)
        unknown = await client.get("/admin/usage/nobody", headers=admin)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_only"
    assert usage.json()["id"] == "user" and usage.json()["requests_this_minute"] == 0
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "key_not_found"


async def test_status_reports_every_tier_and_circuit(inproc: InProcess) -> None:
    ready = await inproc.client.get("/ready")
    health = await inproc.client.get("/health")
    status = await inproc.client.get("/status")  # an open gateway: everyone is an admin
    assert ready.json() == {"status": "ready"} and health.json() == {"status": "ok"}
    tiers = status.json()["tiers"]
    assert tiers["small"]["deployments"]["small-a"] == {
        "reachable": True,
        "detail": "reachable",
        "circuit": "closed",
    }
    assert tiers["large"]["available"] is True
