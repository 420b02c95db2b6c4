"""API keys: 401 and 403 in OpenAI's envelope, hashed keys, scoped keys, admin and /metrics, and
no key or prompt text in the logs."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AuthenticationError, PermissionDeniedError

from gateway.access.keys import KeyRing
from gateway.config import ConfigError
from tests.support.gateway import HARD, Gateway, chat, config, start
from tests.support.upstream import FakeUpstream

TEAM_KEY = "sk-team-0123456789abcdef"
ADMIN_KEY = "sk-admin-fedcba9876543210"
SCOPED_KEY = "sk-scoped-5555555555"


def keyed(small: FakeUpstream, large: FakeUpstream, **limits: Any) -> dict[str, Any]:
    cfg = config(small.url, large.url)
    cfg["keys"] = [
        {"id": "team", "key_sha256": hashlib.sha256(TEAM_KEY.encode()).hexdigest()},
        {"id": "ops", "key_env": "TEST_ADMIN_KEY", "admin": True},
        {
            "id": "scoped",
            "key_env": "TEST_SCOPED_KEY",
            "policies": ["cost-saver"],
            "deployments": ["small-a"],
        },
    ]
    cfg["limits"] = limits
    return cfg


ENV = {"TEST_ADMIN_KEY": ADMIN_KEY, "TEST_SCOPED_KEY": SCOPED_KEY}


@pytest.fixture
def gw(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> Any:
    running = start(tmp_path, keyed(small, large, metrics_require_key=True), env=ENV)
    yield running
    running.stop()


def test_missing_and_wrong_keys_are_401_invalid_api_key(gw: Gateway, small: FakeUpstream) -> None:
    for headers in ({}, {"authorization": "Bearer sk-nope"}, {"authorization": "Basic abc"}):
        r = gw.post(chat(), headers=headers)
        assert r.status_code == 401, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "authentication_error"
        assert "sk-nope" not in r.text
    with pytest.raises(AuthenticationError):
        gw.running.sdk("sk-nope").chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )
    assert not small.history
    assert not gw.records.items, "a refused key is not an accepted request"


def test_a_key_without_the_bearer_prefix_is_told_so(gw: Gateway) -> None:
    for value in (ADMIN_KEY, f"Token {ADMIN_KEY}", "Bearer"):
        r = gw.post(chat(), headers={"authorization": value})
        assert r.status_code == 401, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_api_key"
        assert "expected 'Authorization: Bearer <key>'" in error["message"]
        assert ADMIN_KEY not in r.text
    r = gw.post(chat(), headers={"authorization": f"bearer {ADMIN_KEY}"})
    assert r.status_code == 200, r.text


def test_a_valid_key_is_let_in_and_recorded_by_id(gw: Gateway) -> None:
    c = gw.running.sdk(TEAM_KEY)
    c.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    r = gw.post(chat(), headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200
    assert [rec.api_key_id for rec in gw.records.wait(2)] == ["team", "ops"]


def test_a_scoped_key_gets_403_outside_its_scope(
    gw: Gateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    c = gw.running.sdk(SCOPED_KEY)
    msgs: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(PermissionDeniedError) as denied:
        c.chat.completions.create(model="auto", messages=msgs)
    assert denied.value.code == "policy_not_allowed"
    assert "may not use policy 'balanced'; allowed: cost-saver" in denied.value.message
    with pytest.raises(PermissionDeniedError) as denied:
        c.chat.completions.create(model="large-a", messages=msgs)
    assert denied.value.code == "deployment_not_allowed"
    # Routed, a hard prompt would go large; this key only ever reaches small-a.
    raw = c.chat.completions.with_raw_response.create(model="auto:cost-saver", messages=HARD)  # type: ignore[arg-type]
    assert raw.headers["x-tiergate-deployment"] == "small-a"
    assert not large.history


def test_models_need_a_key_too(gw: Gateway) -> None:
    assert httpx.get(gw.url + "/models").status_code == 401
    r = httpx.get(gw.url + "/models", headers={"authorization": f"Bearer {TEAM_KEY}"})
    assert r.status_code == 200 and r.json()["data"]


def test_metrics_require_a_key_when_configured(gw: Gateway) -> None:
    r = httpx.get(gw.root + "/metrics")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert "tiergate_requests_total" in gw.metrics(TEAM_KEY)


def test_admin_endpoint_needs_an_admin_key(gw: Gateway) -> None:
    url = gw.root + "/admin/usage/team"
    assert httpx.get(url).status_code == 401
    r = httpx.get(url, headers={"authorization": f"Bearer {TEAM_KEY}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    r = httpx.get(url, headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200 and r.json()["id"] == "team"
    r = httpx.get(gw.root + "/admin/usage/nobody", headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 404


def test_no_key_or_prompt_text_reaches_the_logs(
    gw: Gateway, large: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    secret_prompt = "my-password-is-hunter2"
    caplog.set_level(logging.DEBUG)
    gw.post(chat(secret_prompt), key=TEAM_KEY)
    gw.post(chat(secret_prompt), key="sk-wrong-key-xyz")
    gw.post(chat(secret_prompt, stream=True), key=TEAM_KEY)
    gw.post({"model": "auto", "messages": [{"role": "robot", "content": secret_prompt}]})
    gw.records.wait(2)
    text = caplog.text
    for secret in (secret_prompt, TEAM_KEY, "sk-wrong-key-xyz", ADMIN_KEY):
        assert secret not in text


def test_an_open_gateway_says_so_at_start(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gw = start(tmp_path, config(small.url, large.url))
    try:
        assert "no API keys configured: the gateway is open" in caplog.text
        assert gw.post(chat()).status_code == 200
        assert gw.records.last.api_key_id is None
    finally:
        gw.stop()


def test_a_key_env_that_is_not_set_fails_at_start(small: FakeUpstream, large: FakeUpstream) -> None:
    from gateway.config import parse_config

    cfg = parse_config(keyed(small, large))
    with pytest.raises(ConfigError, match="TEST_ADMIN_KEY is not set"):
        KeyRing.from_config(cfg.keys, {}, metrics_require_key=False)
    with pytest.raises(ConfigError, match="exactly one of key_sha256 and key_env"):
        parse_config({**keyed(small, large), "keys": [{"id": "x"}]})
