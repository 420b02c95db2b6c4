"""Request limits: too many messages or too large a max_tokens is a 400 naming the limit."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.gateway import chat, config, start
from tests.support.upstream import FakeUpstream


def test_too_many_messages_and_too_many_tokens_are_400_naming_the_limit(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    cfg = config(small.url, large.url)
    cfg["limits"] = {"max_messages": 3, "max_tokens": 100}
    gw = start(tmp_path, cfg)
    try:
        many = {"model": "auto", "messages": [{"role": "user", "content": "hi"}] * 4}
        r = gw.post(many)
        assert r.status_code == 400
        error = r.json()["error"]
        assert error["code"] == "too_many_messages" and error["param"] == "messages"
        assert "4 entries" in error["message"] and "at most 3" in error["message"]
        for field in ("max_tokens", "max_completion_tokens"):
            r = gw.post(chat(**{field: 101}))
            error = r.json()["error"]
            assert r.status_code == 400 and error["code"] == "max_tokens_too_large"
            assert error["param"] == field and "at most 100" in error["message"]
        r = httpx.post(
            gw.url + "/completions", json={"model": "auto", "prompt": ["a"] * 4}, timeout=10
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
        assert gw.post(chat(max_tokens=100)).status_code == 200
        assert len(small.history) == 1
    finally:
        gw.stop()
