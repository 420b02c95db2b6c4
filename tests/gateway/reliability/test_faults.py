"""Fault injection through the fake upstream over real HTTP: for each fault, what the client gets
and what the gateway records (and, where it says something, what `/metrics` says)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import BACKEND, chat, config, sse_events, start
from tests.support.upstream import Cut, Endless, Fail, FakeUpstream, Malformed, Reply, Stall

DEAD = "http://127.0.0.1:9/v1"  # discard port: nothing listens, the connection is refused


@pytest.fixture(autouse=True, params=["litellm", "openai-compatible"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every fault runs through both backends: a client must not tell them apart."""
    token = BACKEND.set(request.param)
    yield request.param
    BACKEND.reset(token)


def test_connection_refused_falls_back_and_is_recorded(tmp_path: Path, large: FakeUpstream) -> None:
    gw = start(tmp_path, config(DEAD, large.url))
    try:
        r = gw.post(chat())
        assert r.status_code == 200
        assert r.headers["x-tiergate-fallback"] == "small-a=connect"
        rec = gw.records.last
        assert (rec.deployment, rec.served_tier, rec.intended_tier) == ("large-a", "large", "small")
        assert rec.fallback_reason == "connect" and rec.status_code == 200
        assert 'tiergate_fallbacks_total{reason="connect"} 1.0' in gw.metrics()
    finally:
        gw.stop()


def test_every_deployment_refusing_is_502_and_recorded(tmp_path: Path) -> None:
    gw = start(tmp_path, config(DEAD, DEAD))
    try:
        r = gw.post(chat())
        assert r.status_code == 502
        assert r.json()["error"]["code"] == "upstream_connect"
        rec = gw.records.last
        assert rec.status_code == 502 and rec.error_kind == "connect"
    finally:
        gw.stop()


def test_500_is_retried_on_the_same_deployment_with_backoff(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url, retries=1))
    try:
        small.enqueue(Fail(500))
        r = gw.post(chat())
        assert r.status_code == 200
        assert r.headers["x-tiergate-deployment"] == "small-a"
        assert "x-tiergate-fallback" not in r.headers
        assert len(small.history) == 2 and not large.history
        assert gw.records.last.fallback_reason is None
        assert "tiergate_upstream_retries_total 1.0" in gw.metrics()
    finally:
        gw.stop()


def test_500_without_retries_falls_back_to_the_next_tier(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url))
    try:
        small.enqueue(Fail(500))
        r = gw.post(chat())
        assert r.headers["x-tiergate-fallback"] == "small-a=server_error"
        assert gw.records.last.fallback_reason == "server_error"
        assert len(small.history) == 1
    finally:
        gw.stop()


def test_429_with_a_short_retry_after_is_waited_for(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url, retries=1))
    try:
        small.enqueue(Fail(429, retry_after=0.3))
        t0 = time.monotonic()
        r = gw.post(chat())
        assert r.status_code == 200 and r.headers["x-tiergate-deployment"] == "small-a"
        assert time.monotonic() - t0 >= 0.3
        assert len(small.history) == 2
    finally:
        gw.stop()


def test_429_with_a_long_retry_after_falls_back_at_once(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url, retries=1))
    try:
        small.enqueue(Fail(429, retry_after=30))
        t0 = time.monotonic()
        r = gw.post(chat())
        assert r.headers["x-tiergate-fallback"] == "small-a=rate_limited"
        assert time.monotonic() - t0 < 5
        assert len(small.history) == 1 and len(large.history) == 1
        # Everywhere rate-limited: 429 `rate_limit_exceeded` with the upstream's Retry-After.
        small.enqueue(Fail(429, retry_after=30))
        large.enqueue(Fail(429, retry_after=30))
        r = gw.post(chat())
        assert r.status_code == 429 and r.headers["retry-after"] == "30"
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert gw.records.last.error_kind == "rate_limited"
    finally:
        gw.stop()


def test_slow_first_byte_past_the_timeout_falls_back(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url, timeout_s=0.5))
    try:
        small.enqueue(Stall(5))
        t0 = time.monotonic()
        r = gw.post(chat())
        assert r.status_code == 200 and r.headers["x-tiergate-fallback"] == "small-a=timeout"
        assert time.monotonic() - t0 < 3
        gw.stop()
        # A stream's first chunk has its own, shorter limit; the whole stream may run longer.
        gw = start(tmp_path, config(small.url, large.url, timeout_s=30, first_byte_timeout_s=0.5))
        small.enqueue(Reply(delay_s=5))
        t0 = time.monotonic()
        with httpx.stream("POST", gw.url + "/chat/completions", json=chat(stream=True)) as s:
            assert s.headers["x-tiergate-fallback"] == "small-a=timeout"
            events = sse_events(s)
        assert time.monotonic() - t0 < 3
        assert events[-1] == "[DONE]" and '"model":"large-a"' in events[0]
        assert gw.records.wait(1)[0].fallback_reason == "timeout"
    finally:
        gw.stop()


def test_stream_cut_after_n_chunks_ends_with_an_error_event_and_is_partial(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url))
    try:
        small.enqueue(Cut(after=2))
        with httpx.stream("POST", gw.url + "/chat/completions", json=chat(stream=True)) as s:
            assert s.status_code == 200
            events = sse_events(s)
        assert len(events) == 4  # two chunks, the error event, [DONE]
        assert events[-1] == "[DONE]" and "failed mid-stream" in events[-2]
        rec = gw.records.wait(1)[0]
        assert rec.partial and not rec.client_aborted and rec.status_code == 200
        assert rec.error_kind is not None and rec.deployment == "small-a"
        assert rec.completion_tokens > 0 and rec.tokens_estimated
        assert not large.history
        assert 'status="partial"' in gw.metrics()
    finally:
        gw.stop()


def test_malformed_json_falls_back_and_is_recorded(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url))
    try:
        small.enqueue(Malformed())
        large.enqueue(Malformed())
        r = gw.post(chat())
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_protocol"
        assert gw.records.last.error_kind == "protocol"
        r = gw.post(chat())  # the next request is fine again
        assert r.status_code == 200
    finally:
        gw.stop()


def test_endless_stream_is_cut_at_the_total_timeout(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url, timeout_s=1.0))
    try:
        small.enqueue(Endless(interval_s=0.01))
        t0 = time.monotonic()
        with httpx.stream("POST", gw.url + "/chat/completions", json=chat(stream=True)) as s:
            events = []
            for line in s.iter_lines():  # bounded: without the timeout this stream never ends
                if line.startswith("data: "):
                    events.append(line[6:])
                if len(events) > 1000:
                    break
        assert 0.9 < time.monotonic() - t0 < 5
        assert events[-1] == "[DONE]" and "upstream_timeout" in events[-2]
        assert len(events) > 10
        rec = gw.records.wait(1)[0]
        assert rec.partial and rec.error_kind == "timeout"
        deadline = time.monotonic() + 5
        while small.stream_cancelled < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert small.stream_cancelled == 1, "the upstream request must be closed"
    finally:
        gw.stop()


def test_client_disconnect_cancels_the_upstream_stream(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, config(small.url, large.url))
    try:
        small.enqueue(Endless(interval_s=0.02))
        with httpx.stream("POST", gw.url + "/chat/completions", json=chat(stream=True)) as s:
            lines = s.iter_lines()
            got = [next(lines) for _ in range(6)]
        assert any(g.startswith("data: ") for g in got)
        rec = gw.records.wait(1)[0]
        assert rec.client_aborted and rec.status_code == 499 and rec.partial
        deadline = time.monotonic() + 5
        while small.stream_cancelled < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert small.stream_cancelled == 1
        assert not large.history
    finally:
        gw.stop()
