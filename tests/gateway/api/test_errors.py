"""Every error the gateway returns is OpenAI's envelope, with the right status."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.gateway import RunningGateway, start_gateway, two_tier_config
from tests.support.upstream import Fail, FakeUpstream, Stall

pytestmark = pytest.mark.usefixtures("backend")  # once per backend (tests/gateway/conftest.py)

EASY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


def assert_envelope(response: httpx.Response, status: int, code: str | None = None) -> dict:  # type: ignore[type-arg]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error  # type: ignore[no-any-return]


def post(gw: RunningGateway, body: object = None, **kw: object) -> httpx.Response:
    return httpx.post(gw.url + "/chat/completions", json=body, timeout=30, **kw)  # type: ignore[arg-type]


def test_malformed_json_is_400(gateway: RunningGateway) -> None:
    r = httpx.post(
        gateway.url + "/chat/completions",
        content=b'{"model": "auto",',
        headers={"content-type": "application/json"},
    )
    error = assert_envelope(r, 400, "invalid_json")
    assert "not valid JSON" in error["message"]


def test_missing_field_names_it(gateway: RunningGateway) -> None:
    error = assert_envelope(post(gateway, {"model": "auto"}), 400, "invalid_request")
    assert error["param"] == "messages"
    assert "'messages' is required" in error["message"]


def test_wrong_value_names_field_and_value(gateway: RunningGateway) -> None:
    body = {**EASY, "temperature": 9}
    error = assert_envelope(post(gateway, body), 400)
    assert error["param"] == "temperature"
    assert "less than or equal to 2" in error["message"] and "got 9" in error["message"]
    error = assert_envelope(post(gateway, {**EASY, "messages": [{"role": "robot"}]}), 400)
    assert error["param"] == "messages.0.role"


def test_unknown_model_is_404_and_lists_the_choices(gateway: RunningGateway) -> None:
    error = assert_envelope(post(gateway, {**EASY, "model": "gpt-17"}), 404, "model_not_found")
    assert "'gpt-17' does not exist" in error["message"] and "auto:cost-saver" in error["message"]
    assert error["param"] == "model"
    assert_envelope(post(gateway, {**EASY, "model": "auto:nope"}), 404, "model_not_found")


def test_bad_tier_header_is_400(gateway: RunningGateway) -> None:
    error = assert_envelope(post(gateway, EASY, headers={"x-tiergate-tier": "medium"}), 400)
    assert "must be one of ['small', 'large']; got 'medium'" in error["message"]


def test_body_over_the_limit_is_413(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start_gateway(tmp_path, two_tier_config(small.url, large.url), max_body_bytes=1000)
    try:
        big = {**EASY, "messages": [{"role": "user", "content": "x" * 2000}]}
        assert_envelope(post(gw, big), 413, "request_too_large")

        def chunked():  # type: ignore[no-untyped-def]
            yield b'{"model": "auto", "messages": [{"role": "user", "content": "'
            for _ in range(20):
                yield b"y" * 100
            yield b'"}]}'

        r = httpx.post(
            gw.url + "/chat/completions",
            content=chunked(),
            headers={"content-type": "application/json"},
        )
        assert_envelope(r, 413, "request_too_large")
        assert not small.history
    finally:
        gw.stop()


def test_unknown_route_and_method(gateway: RunningGateway) -> None:
    assert_envelope(httpx.get(gateway.url + "/nothing-here"), 404)
    assert_envelope(httpx.get(gateway.url + "/chat/completions"), 405)


def test_upstream_failure_after_fallbacks_is_502(
    gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Fail(500))
    large.enqueue(Fail(503))
    r = post(gateway, EASY)
    error = assert_envelope(r, 502, "upstream_server_error")
    assert "small-a: server_error; large-a: server_error" in error["message"]
    assert r.headers["x-tiergate-fallback"] == "small-a=server_error, large-a=server_error"
    assert r.headers["x-request-id"]


def test_rate_limited_everywhere_passes_retry_after(
    gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Fail(429, retry_after=3))
    large.enqueue(Fail(429, retry_after=7))
    r = post(gateway, EASY)
    error = assert_envelope(r, 429, "rate_limit_exceeded")
    assert error["type"] == "rate_limit_error"
    assert "small-a: rate_limited; large-a: rate_limited" in error["message"]
    assert r.headers["retry-after"] == "3"  # the soonest one of them may answer again


def test_rate_limited_without_retry_after_still_says_when(
    gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Fail(429, retry_after=0.2))
    large.enqueue(Fail(429))
    r = post(gateway, EASY)
    assert_envelope(r, 429, "rate_limit_exceeded")
    assert r.headers["retry-after"] == "1"  # an integer, never below one second


def test_upstream_rejecting_the_request_is_not_retried(
    gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Fail(400, message="top_k must be positive"))
    error = assert_envelope(post(gateway, EASY), 400, "upstream_rejected")
    assert "top_k must be positive" in error["message"]
    assert not large.history


def test_timeout_is_504(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> None:
    config = two_tier_config(small.url, large.url)
    for dep in config["deployments"].values():
        dep["timeout_s"] = 0.5
    gw = start_gateway(tmp_path, config)
    try:
        small.enqueue(Stall(3))
        large.enqueue(Stall(3))
        error = assert_envelope(post(gw, EASY), 504, "upstream_timeout")
        assert "small-a: timeout; large-a: timeout" in error["message"]
    finally:
        gw.stop()


@pytest.mark.parametrize("path", ["/chat/completions", "/completions"])
def test_empty_and_non_object_bodies(gateway: RunningGateway, path: str) -> None:
    assert_envelope(
        httpx.post(gateway.url + path, content=b"", headers={"content-type": "application/json"}),
        400,
    )
    assert_envelope(httpx.post(gateway.url + path, json=[1, 2]), 400)


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_without_a_json_content_type_is_told_so(
    gateway: RunningGateway, ctype: str | None
) -> None:
    headers = {"content-type": ctype} if ctype else {}
    body = b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}'
    r = httpx.post(gateway.url + "/chat/completions", content=body, headers=headers)
    error = assert_envelope(r, 400, "invalid_content_type")
    assert "'Content-Type: application/json'" in error["message"]
    assert (ctype or "no Content-Type") in error["message"]
