"""Fallback before the first byte, for JSON and streams; unavailable tiers; mid-stream failure."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.support.gateway import RunningGateway, start_gateway, two_tier_config
from tests.support.upstream import Cut, Fail, FakeUpstream, Malformed

pytestmark = pytest.mark.usefixtures("backend")  # once per backend (tests/gateway/conftest.py)

EASY = [{"role": "user", "content": "What is 2 + 2?"}]
HARD = [{"role": "user", "content": "HARD: design a compiler"}]


def client(gw: RunningGateway) -> OpenAI:
    return gw.sdk()


def test_failed_small_deployment_falls_back_to_large(
    gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Fail(500))
    raw = client(gateway).chat.completions.with_raw_response.create(model="auto", messages=EASY)
    assert raw.headers["x-tiergate-fallback"] == "small-a=server_error"
    assert raw.headers["x-tiergate-route"] == "large"
    assert raw.parse().model == "large-a"


def test_malformed_upstream_body_falls_back(
    gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Malformed())
    raw = client(gateway).chat.completions.with_raw_response.create(model="auto", messages=EASY)
    assert raw.headers["x-tiergate-fallback"] == "small-a=protocol"


def test_stream_falls_back_before_the_first_byte(
    gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Fail(503))
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="auto", messages=EASY, stream=True
    )
    assert raw.headers["x-tiergate-fallback"] == "small-a=server_error"
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert {c.model for c in chunks} == {"large-a"}


def test_connection_refused_falls_back(tmp_path: Path, large: FakeUpstream) -> None:
    gw = start_gateway(tmp_path, two_tier_config("http://127.0.0.1:9/v1", large.url))
    try:
        raw = client(gw).chat.completions.with_raw_response.create(model="auto", messages=EASY)
        assert raw.headers["x-tiergate-fallback"] == "small-a=connect"
        assert raw.headers["x-tiergate-deployment"] == "large-a"
    finally:
        gw.stop()


def test_large_tier_without_its_key_is_unavailable_and_small_answers(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    config = two_tier_config(small.url, large.url)
    config["deployments"]["large-a"]["api_key_env"] = "TIERGATE_TEST_LARGE_KEY"
    gw = start_gateway(tmp_path, config, env={})
    try:
        raw = client(gw).chat.completions.with_raw_response.create(model="auto", messages=HARD)
        assert raw.headers["x-tiergate-fallback"] == "large-a=unavailable"
        assert raw.headers["x-tiergate-route"] == "small"
        assert not large.history
        status = httpx.get(gw.root + "/status")
        assert status.json()["status"] == "degraded"
        assert status.json()["tiers"]["large"]["available"] is False
        assert "TIERGATE_TEST_LARGE_KEY is not set" in status.text
        assert httpx.get(gw.root + "/ready").status_code == 200, "upstreams are not readiness"
        cards = {m.id: m for m in client(gw).models.list()}
        assert cards["large-a"].tiergate["available"] is False  # type: ignore[attr-defined]
        # Named directly, an unreachable deployment is a 503 in the envelope, never a fake answer.
        r = httpx.post(gw.url + "/chat/completions", json={"model": "large-a", "messages": HARD})
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "no_deployment_available"
    finally:
        gw.stop()


def test_with_the_key_set_the_large_tier_serves(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    config = two_tier_config(small.url, large.url)
    config["deployments"]["large-a"]["api_key_env"] = "TIERGATE_TEST_LARGE_KEY"
    gw = start_gateway(tmp_path, config, env={"TIERGATE_TEST_LARGE_KEY": "sk-test"})
    try:
        client(gw).chat.completions.create(model="auto", messages=HARD)
        assert large.history[0].headers["authorization"] == "Bearer sk-test"
        assert httpx.get(gw.root + "/status").json()["status"] == "ok"
    finally:
        gw.stop()


def test_mid_stream_failure_ends_with_an_error_event(
    gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Cut(after=2))
    with httpx.stream(
        "POST",
        gateway.url + "/chat/completions",
        json={"model": "auto", "messages": EASY, "stream": True},
    ) as r:
        assert r.status_code == 200
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert '"error"' in events[-2] and "failed mid-stream" in events[-2]
    assert '"content":"What"' not in events[0]  # the text is the upstream's, relayed as it came
    assert not large.history, "no fallback once bytes reached the client"


def test_health_is_up_without_upstreams(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, two_tier_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"))
    try:
        assert httpx.get(gw.root + "/health").json() == {"status": "ok"}
        assert httpx.get(gw.root + "/ready").status_code == 200
        assert httpx.get(gw.root + "/status").json()["status"] == "degraded"
    finally:
        gw.stop()
