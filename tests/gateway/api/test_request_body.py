"""Reading a request body (issue 13, items 1 and 4), through a real gateway on loopback.

The key is checked from the headers before the body is read; cheap structural limits run on the
raw bytes before any parsing; big bodies are parsed off the event loop; a string that is not valid
Unicode (a lone surrogate) is the client's 400, naming where it is, on every endpoint and backend.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateway import Gateway, as_json, chat, config, sse_events, start
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.usefixtures("backend")  # once per backend (tests/gateway/conftest.py)

KEY = "sk-body-key-000"
LONE = "x\ud800y"


@pytest.fixture
def gw(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> Iterator[Gateway]:
    cfg = config(small.url, large.url)
    cfg["deployments"]["embedder"] = {
        "model": "openai/text-embedding-3-small",
        "api_base": small.url,
        "capabilities": {"embeddings": True},
    }
    gateway = start(tmp_path, cfg)
    yield gateway
    gateway.stop()


@pytest.fixture
def keyed(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> Iterator[Gateway]:
    cfg = config(small.url, large.url)
    cfg["keys"] = [{"id": "k", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest()}]
    gateway = start(tmp_path, cfg)
    yield gateway
    gateway.stop()


def part(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def post(
    gw: Gateway, path: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    sent = as_json(body)
    sent["headers"].update(headers or {})
    return httpx.post(gw.url + path, **sent, timeout=60)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/chat/completions", chat(LONE), "messages[0].content"),
        (
            "/chat/completions",
            {
                "model": "auto",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "a"}, part(LONE)]},
                ],
            },
            "messages[1].content[1].text",
        ),
        ("/chat/completions", chat(LONE, stream=True), "messages[0].content"),
        ("/chat/completions", {**chat(), "model": "small-a", "user": LONE}, "user"),
        ("/chat/completions", {**chat(), "metadata": {"tags": ["ok", LONE]}}, "metadata.tags[1]"),
        ("/completions", {"model": "auto", "prompt": LONE}, "prompt"),
        ("/completions", {"model": "small-a", "prompt": ["fine", LONE]}, "prompt[1]"),
        ("/completions", {"model": "auto", "prompt": LONE, "stream": True}, "prompt"),
        ("/responses", {"model": "auto", "input": LONE}, "input"),
        ("/responses", {"model": "auto", "input": LONE, "stream": True}, "input"),
        ("/responses", {"model": "small-a", "instructions": LONE, "input": "hi"}, "instructions"),
        (
            "/responses",
            {
                "model": "auto",
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "a"}]},
                    {"role": "user", "content": [{"type": "input_text", "text": LONE}]},
                ],
            },
            "input[1].content[0].text",
        ),
        ("/embeddings", {"model": "embedder", "input": LONE}, "input"),
        ("/embeddings", {"model": "embedder", "input": ["fine", LONE]}, "input[1]"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(
    gw: Gateway, small: FakeUpstream, path: str, body: Any, param: str
) -> None:
    r = post(gw, path, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_unicode"
    assert error["param"] == param
    assert error["message"] == f"{param} contains a lone surrogate (\\ud800): not valid Unicode"
    assert not small.history


def test_paired_surrogates_are_fine(gw: Gateway, small: FakeUpstream) -> None:
    """An escaped pair is one character outside the BMP: valid, and relayed as it came."""
    r = post(gw, "/chat/completions", chat("smile \U0001f600"))
    assert r.status_code == 200
    assert small.history[-1].body["messages"][0]["content"] == "smile \U0001f600"


def test_the_key_is_checked_before_the_body_is_read(keyed: Gateway) -> None:
    """A client announcing a 1 MB body and sending none gets its 401 at once, instead of the
    gateway waiting for (and then parsing) a body it will refuse anyway."""
    host, port = keyed.root.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
            b"content-type: application/json\r\ncontent-length: 1000000\r\n\r\n"
        )
        sock.settimeout(3)
        reply = b""
        while chunk := sock.recv(65536):  # the gateway closes the connection after its 401
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
    assert b'"invalid_api_key"' in reply
    bad = post(keyed, "/chat/completions", {"model": "auto"})
    assert bad.status_code == 401, "401 before the body's 400: the body is not read without a key"
    ok = post(keyed, "/chat/completions", chat(), headers={"authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200


def empty_messages(n: int) -> bytes:
    return b'{"model":"auto","messages":[' + b",".join([b"{}"] * n) + b"]}"


def health_latencies(gw: Gateway, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            client.get(gw.root + "/health")
            out.append(time.perf_counter() - t0)
            time.sleep(0.01)


@pytest.mark.parametrize("with_key", [True, False])
def test_a_million_empty_messages_is_refused_fast_and_health_stays_prompt(
    keyed: Gateway, with_key: bool
) -> None:
    """The issue's case: 5.6-9.4 s to its 400, and /health waited 5.5 s meanwhile."""
    body = empty_messages(1_000_000)
    headers = {"content-type": "application/json"}
    if with_key:
        headers["authorization"] = f"Bearer {KEY}"
    stop, latencies = threading.Event(), []
    poller = threading.Thread(target=health_latencies, args=(keyed, stop, latencies))
    poller.start()
    try:
        time.sleep(0.1)
        t0 = time.perf_counter()
        r = httpx.post(keyed.url + "/chat/completions", content=body, headers=headers, timeout=60)
        took = time.perf_counter() - t0
        time.sleep(0.1)
    finally:
        stop.set()
        poller.join()
    assert r.status_code == (400 if with_key else 401), r.text
    if with_key:
        assert r.json()["error"]["code"] == "too_many_json_values"
    assert took < 2.0, took
    assert max(latencies) < 0.5, max(latencies)


def test_too_many_messages_is_refused_before_validation(gw: Gateway) -> None:
    messages = [{"role": "user", "content": "hi"}] * 2000
    r = post(gw, "/chat/completions", {"model": "auto", "messages": messages})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "too_many_messages" and error["param"] == "messages"
    r = post(gw, "/completions", {"model": "auto", "prompt": ["p"] * 2000})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"


def test_nesting_past_the_limit_is_refused_and_below_it_relayed(
    gw: Gateway, small: FakeUpstream
) -> None:
    deep = b"[" * 600 + b"]" * 600
    body = b'{"model":"auto","messages":[{"role":"user","content":"hi"}],"x":' + deep + b"}"
    r = httpx.post(
        gw.url + "/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "too_deeply_nested"
    assert "601 levels" in r.json()["error"]["message"]
    # Brackets inside strings are text, not structure.
    r = post(gw, "/chat/completions", chat("[" * 5000 + "{" * 5000))
    assert r.status_code == 200, r.text


def test_a_big_body_is_parsed_off_the_event_loop(
    gw: Gateway, small: FakeUpstream, backend: str
) -> None:
    """300 KB of conversation is parsed and validated in a worker thread: /health answers
    meanwhile. (Its last field is wrong, so no backend work follows: with litellm, the OpenAI
    SDK's own request transform then costs the event loop about half a millisecond a message,
    which is litellm's, not the body's; see bench/RESULTS.md.)"""
    messages = [{"role": "user", "content": f"line {i} " + "word " * 60} for i in range(1000)]
    body = {"model": "small-a", "messages": messages, "temperature": 9}
    stop, latencies = threading.Event(), []
    poller = threading.Thread(target=health_latencies, args=(gw, stop, latencies))
    poller.start()
    try:
        for _ in range(5):
            r = post(gw, "/chat/completions", body)
            assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"
        if backend == "openai-compatible":
            r = post(gw, "/chat/completions", {**body, "temperature": 1})
            with httpx.stream(
                "POST",
                gw.url + "/chat/completions",
                **as_json({**body, "temperature": 1, "stream": True}),
            ) as s:
                events = sse_events(s)
            assert r.status_code == 200 and events[-1] == "[DONE]"
            assert len(small.history[-1].body["messages"]) == 1000
    finally:
        stop.set()
        poller.join()
    assert max(latencies) < 0.5, max(latencies)
