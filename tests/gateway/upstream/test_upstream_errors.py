"""What the client gets when an upstream, or the building of the request for it, fails: through a
real gateway on loopback, once per backend (issue 13, items 2, 8, 9 and 10).

- A request that cannot be built (encoded) for a deployment is the client's fault: 400, and it
  neither counts against the deployment's breaker nor falls back.
- Valid JSON that orjson cannot write (an integer over 64 bits, nesting past 254 levels) is relayed.
- Client-facing text names deployments and error kinds, never URLs, keys or library exceptions; an
  upstream's 401 or 403 is the gateway's 502 `upstream_auth_failed`, never the client's 401.
- `Retry-After` is whole seconds in [1, 3600], whatever the upstream sent.
"""

from __future__ import annotations

import email.utils
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import Deployment
from gateway.upstream.base import ERROR_KINDS, Target, UpstreamCall, UpstreamError
from gateway.upstream.litellm import LiteLLMBackend
from gateway.upstream.openai import OpenAICompatibleBackend
from tests.support.gateway import Gateway, chat, config, sse_events, start
from tests.support.upstream import Cut, Fail, FakeUpstream

pytestmark = pytest.mark.usefixtures("backend")  # once per backend (tests/gateway/conftest.py)

LONE = "x\ud800y"
"""A lone surrogate: valid JSON (`"x\\ud800y"`), not valid Unicode."""
UPSTREAM_KEY = "sk-upstream-secret-0123456789"


@pytest.fixture
def gw(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> Any:
    gateway = start(tmp_path, config(small.url, large.url))
    yield gateway
    gateway.stop()


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(depth):
        value = {"a": value}
    return value


def depth_of(value: Any) -> int:
    depth = 0
    while isinstance(value, dict) and "a" in value:
        value, depth = value["a"], depth + 1
    return depth


def test_a_request_that_cannot_be_encoded_is_400_and_never_opens_the_breaker(
    gw: Gateway, large: FakeUpstream
) -> None:
    """Five such requests used to open `large-a`'s circuit (litellm: `server_error`), or were a
    500 (openai-compatible: orjson's error)."""
    for _ in range(6):
        r = gw.post({"model": "large-a", "messages": [{"role": "user", "content": LONE}]})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["type"] == "invalid_request_error"
    r = gw.post({"model": "large-a", "messages": [{"role": "user", "content": "fine"}]})
    assert r.status_code == 200, r.text
    assert 'tiergate_circuit_state{deployment="large-a",state="open"} 0.0' in gw.metrics()


@pytest.mark.parametrize(
    "call",
    [
        UpstreamCall("chat", {"messages": [{"role": "user", "content": LONE}]}),
        UpstreamCall("completions", {"prompt": LONE}),
        UpstreamCall("responses", {"input": LONE}),
        UpstreamCall("embeddings", {"input": [LONE]}),
    ],
    ids=lambda call: call.endpoint,
)
async def test_an_encoding_error_while_building_is_the_clients_and_counts_nowhere(
    backend: str, large: FakeUpstream, call: UpstreamCall
) -> None:
    """Below the gateway's own check: a backend that cannot encode the request says so with a
    kind that neither counts, nor retries, nor falls back; nothing reaches the upstream. Every
    endpoint a backend calls (litellm sends no `responses`: native deployments are direct)."""
    if backend == "litellm" and call.endpoint == "responses":
        pytest.skip("the litellm backend never calls /v1/responses")
    live = LiteLLMBackend() if backend == "litellm" else OpenAICompatibleBackend()
    target = Target("large-a", Deployment(model="openai/large-model", api_base=large.url), None)
    try:
        with pytest.raises(UpstreamError) as info:
            await live.complete(target, call)
    finally:
        await live.aclose()
    error = info.value
    assert error.kind == "unencodable"
    assert not (error.counts or error.falls_back or error.retried)
    assert ERROR_KINDS["unencodable"].counts is False
    assert not large.history


def test_integers_over_64_bits_and_deep_nesting_are_relayed(
    gw: Gateway, small: FakeUpstream
) -> None:
    body = chat(seed=10**20 + 1, deep=nested(300))
    r = gw.post(body)
    assert r.status_code == 200, r.text
    sent = small.history[-1].body
    assert sent["seed"] == 10**20 + 1  # exactly: not rounded through a float
    assert depth_of(sent["deep"]) == 300
    with httpx.stream("POST", gw.url + "/chat/completions", json={**body, "stream": True}) as s:
        assert s.status_code == 200
        assert sse_events(s)[-1] == "[DONE]"


def test_integers_over_64_bits_are_relayed_on_a_responses_stream(
    gw: Gateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    """The Responses API echoes the request's `tools` in its events: a schema with an integer
    past 64 bits must not break the stream (orjson cannot write it)."""
    tool = {
        "type": "function",
        "name": "pick",
        "parameters": {"type": "integer", "maximum": 10**20 + 1},
    }
    body = {"model": "auto", "input": "hi", "tools": [tool], "stream": True}
    with httpx.stream("POST", gw.url + "/responses", json=body, timeout=60) as s:
        assert s.status_code == 200
        events = [json.loads(e) for e in sse_events(s)]
    assert events[-1]["type"] == "response.completed", events[-1]
    echoed = events[0]["response"]["tools"][0]["parameters"]["maximum"]
    assert echoed == 10**20 + 1  # exactly: not rounded through a float
    (sent,) = small.history + large.history
    assert sent.body["tools"][0]["function"]["parameters"]["maximum"] == 10**20 + 1


def test_a_stream_cut_names_the_deployment_and_kind_only(
    gw: Gateway, small: FakeUpstream
) -> None:
    small.enqueue(Cut(after=2))
    with httpx.stream("POST", gw.url + "/chat/completions", json=chat(stream=True)) as s:
        events = sse_events(s)
    error = events[-2]
    assert "small-a" in error and "failed mid-stream" in error
    for leak in ("http", "127.0.0.1", "Error(", "Exception", "aiohttp", "litellm", "Traceback"):
        assert leak not in error, error


def test_an_upstream_401_is_a_502_upstream_auth_failed_without_its_key(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(small.url, large.url, api_key_env="UPSTREAM_KEY")
    gw = start(tmp_path, cfg, env={"UPSTREAM_KEY": UPSTREAM_KEY})
    masked = "Incorrect API key provided: sk-upstr**********6789"
    try:
        small.enqueue(Fail(401, masked))
        large.enqueue(Fail(403, masked))
        r = gw.post(chat())
        assert r.status_code == 502, r.text
        error = r.json()["error"]
        assert error["code"] == "upstream_auth_failed"
        assert error["type"] == "upstream_error"
        for leak in ("sk-", "Incorrect API key", "http", "127.0.0.1"):
            assert leak not in r.text
        assert "www-authenticate" not in r.headers
        # A deployment that refuses the gateway's own key is the operator's to fix: logged.
        assert any("small-a" in m and "401" in m for m in caplog.messages)
        # One deployment refusing the gateway's key is not the end: the next one answers.
        small.enqueue(Fail(401, masked))
        r = gw.post(chat())
        assert r.status_code == 200 and r.headers["x-tiergate-fallback"] == "small-a=auth_failed"
    finally:
        gw.stop()


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("sent", "low", "high"),
    [
        ("1000000", 3600, 3600),
        ("-5", 1, 1),
        ("2.5", 3, 3),
        ("soon", 1, 1),  # unreadable: the gateway's own 1 s
        ("date:120", 110, 121),
        ("date:-3000", 1, 1),
    ],
)
def test_retry_after_is_whole_seconds_between_1_and_3600(
    gw: Gateway, small: FakeUpstream, large: FakeUpstream, sent: str, low: int, high: int
) -> None:
    value = http_date(float(sent[5:])) if sent.startswith("date:") else sent
    small.enqueue(Fail(429, retry_after=value))
    large.enqueue(Fail(429, retry_after=value))
    r = gw.post(chat())
    # Every deployment rate limited: the client's 429, to back off as the upstreams said.
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
    assert r.headers["retry-after"].isdigit(), r.headers["retry-after"]
    assert low <= int(r.headers["retry-after"]) <= high
