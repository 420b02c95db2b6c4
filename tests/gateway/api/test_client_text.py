"""What the gateway echoes back of what a client sent, and how it words its refusals (issue 13,
item 11): a client's `model` and `x-request-id` are echoed bounded, and a budget is "daily"."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from tests.support.gateway import chat, config, start
from tests.support.upstream import FakeUpstream

KEY = "sk-text-key-000"


def test_a_huge_model_name_is_echoed_cut_in_the_404(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url))
    try:
        name = "m" * 10_000
        r = gw.post({**chat(), "model": name})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
        message = r.json()["error"]["message"]
        assert f"'{'m' * 64}...'" in message
        assert len(message) < 500
    finally:
        gw.stop()


def test_x_request_id_is_kept_only_when_short_and_plain(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url))
    try:
        plain = "trace-01J9Z7K3:abc_DEF.123/x+y="
        r = gw.post(chat(), headers={"x-request-id": plain})
        assert r.headers["x-request-id"] == plain
        for sent in ("r" * 129, "r" * 10_000, "has space", 'quote"d', "caf\u00e9", ""):
            r = gw.post(chat(), headers={"x-request-id": sent.encode("utf-8")})  # type: ignore[dict-item]
            assert r.status_code == 200
            assert r.headers["x-request-id"] != sent
            assert r.headers["x-request-id"].startswith("req-")
        ids = [rec.request_id for rec in gw.records.wait(7)]
        assert ids[0] == plain
        assert all(len(i) <= 128 for i in ids)
    finally:
        gw.stop()


def test_a_spent_daily_budget_says_daily(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    cfg = config(small.url, large.url)
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    cfg["keys"] = [{"id": "k", "key_sha256": digest, "budget_usd": 1e-9}]
    gw = start(tmp_path, cfg)
    try:
        r = httpx.post(
            gw.url + "/chat/completions",
            json=chat(max_tokens=10),
            headers={"authorization": f"Bearer {KEY}"},
        )
        assert r.status_code == 429 and r.json()["error"]["code"] == "insufficient_quota"
        message = r.json()["error"]["message"]
        assert "daily budget" in message and "dayly" not in message
        assert 1 <= int(r.headers["retry-after"]) <= 3600
    finally:
        gw.stop()
