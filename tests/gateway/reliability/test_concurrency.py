"""Request limits (messages, max_tokens) and per-deployment concurrency with a bounded queue."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx

from tests.reliability.support import chat, config, start
from tests.support.upstream import FakeUpstream, Reply


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


def _slow_pair(gw_url: str) -> list[httpx.Response]:
    """Two requests to small-a at once, the first one slow."""
    body = {"model": "small-a", "messages": [{"role": "user", "content": "hi"}]}

    def post(_: int) -> httpx.Response:
        return httpx.post(gw_url + "/chat/completions", json=body, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, 0)
        time.sleep(0.3)
        second = pool.submit(post, 1)
        return [first.result(), second.result()]


def test_a_full_deployment_without_a_queue_refuses_with_503_and_retry_after(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url, max_concurrency=1, max_queue=0))
    try:
        small.enqueue(Reply(delay_s=1.5))
        first, second = _slow_pair(gw.url)
        assert first.status_code == 200
        assert second.status_code == 503, second.text
        assert second.headers["retry-after"] == "1"
        assert "at_capacity" in second.json()["error"]["message"]
        assert len(small.history) == 1
        assert 'tiergate_queue_refused_total{deployment="small-a"} 1.0' in gw.metrics()
        # Routed traffic falls back to the other tier instead.
        small.enqueue(Reply(delay_s=1.5))
        body = chat()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            a = pool.submit(gw.post, body)
            time.sleep(0.3)
            b = pool.submit(gw.post, body)
            assert a.result().headers["x-tiergate-deployment"] == "small-a"
            assert b.result().headers["x-tiergate-fallback"] == "small-a=at_capacity"
    finally:
        gw.stop()


def test_a_queued_request_waits_for_the_slot(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(
        tmp_path, config(small.url, large.url, max_concurrency=1, max_queue=1, queue_timeout_s=5)
    )
    try:
        small.enqueue(Reply(delay_s=1.0))
        first, second = _slow_pair(gw.url)
        assert first.status_code == 200 and second.status_code == 200
        assert len(small.history) == 2
    finally:
        gw.stop()


def test_a_queue_timeout_refuses(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> None:
    gw = start(
        tmp_path,
        config(small.url, large.url, max_concurrency=1, max_queue=4, queue_timeout_s=0.3),
    )
    try:
        small.enqueue(Reply(delay_s=2.0))
        first, second = _slow_pair(gw.url)
        assert first.status_code == 200 and second.status_code == 503
        assert "no free slot within 0.3s" in second.json()["error"]["message"]
    finally:
        gw.stop()
