"""Per-deployment concurrency: a limit, a bounded queue, a queue timeout, and the 503 past them."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx

from tests.support.gateway import chat, config, start
from tests.support.upstream import FakeUpstream, Reply


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
