"""`POST /v1/feedback` over real HTTP: only the key that made a request may score it; the score is
stored beside the request's row, with an outcome row for retraining."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.storage import Database
from tests.support.gateway import Gateway, start, two_tier_config
from tests.support.upstream import FakeUpstream, Reply

KEYS = {"ALICE_KEY": "alice-secret", "BOB_KEY": "bob-secret"}


@pytest.fixture
def gateway(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> Iterator[Gateway]:
    config = two_tier_config(small.url, large.url)
    for deployment in config["deployments"].values():
        deployment["backend"] = "openai-compatible"
    config["keys"] = [
        {"id": "alice", "key_env": "ALICE_KEY"},
        {"id": "bob", "key_env": "BOB_KEY"},
    ]
    running = start(tmp_path, config, KEYS)
    yield running
    running.stop()


def feedback(gateway: Gateway, body: dict[str, Any], key: str) -> httpx.Response:
    return httpx.post(
        gateway.url + "/feedback",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def database(tmp_path: Path) -> Database:
    return Database.open(f"sqlite:///{tmp_path / 'logs' / 'requests.db'}")


def test_only_the_key_that_made_the_request_may_score_it(
    gateway: Gateway, small: FakeUpstream, tmp_path: Path
) -> None:
    small.enqueue(Reply(text="Paris is the capital of France."))
    r = gateway.post(
        {"model": "auto", "messages": [{"role": "user", "content": "Capital of France?"}]},
        key="alice-secret",
    )
    request_id = r.headers["x-request-id"]
    refused = feedback(gateway, {"request_id": request_id, "score": "bad"}, "bob-secret")
    assert refused.status_code == 404, refused.text
    assert refused.json()["error"]["param"] == "request_id"
    taken = feedback(gateway, {"request_id": request_id, "score": "good"}, "alice-secret")
    assert taken.status_code == 200, taken.text
    receipt = taken.json()
    assert receipt["object"] == "feedback" and receipt["request_id"] == request_id
    assert receipt["score"] == 1.0
    assert feedback(gateway, {"request_id": request_id, "score": 0.25}, "alice-secret").is_success
    db = database(tmp_path)
    try:
        scores = [(f.api_key_id, f.score) for f in db.store.feedback(request_id=request_id)]
        assert scores == [("alice", 1.0), ("alice", 0.25)]
        (row,) = db.store.find_requests(request_id)
        assert row["api_key_id"] == "alice"
        deadline = time.monotonic() + 5
        while len(db.store.outcomes(kind="feedback")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        outcomes = db.store.outcomes(kind="feedback")
        assert [o.verdict for o in outcomes] == [1.0, 0.25]
        assert outcomes[0].weak_tier == "small" and outcomes[0].strong_tier is None
        assert outcomes[0].features == {"answer_chars": 31}
    finally:
        db.close()
    metrics = gateway.metrics()
    assert 'tiergate_feedback_total{category="none",policy="balanced",tier="small"} 2.0' in metrics
    assert (
        'tiergate_feedback_score_total{category="none",policy="balanced",tier="small"} 1.25'
        in metrics
    )


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"request_id": "req-1", "score": 1.5}, "score"),
        ({"request_id": "req-1", "score": "meh"}, "score"),
        ({"score": 1}, "request_id"),
        ({"request_id": "req-1", "response_id": "resp-1", "score": 1}, "request_id"),
    ],
)
def test_a_bad_body_is_a_400_naming_what_is_accepted(
    gateway: Gateway, body: dict[str, Any], where: str
) -> None:
    r = feedback(gateway, body, "alice-secret")
    assert r.status_code == 400, r.text
    assert where in r.json()["error"]["message"]


def test_unknown_requests_and_responses_are_404(gateway: Gateway) -> None:
    for body in ({"request_id": "req-nope", "score": 1}, {"response_id": "resp-nope", "score": 0}):
        r = feedback(gateway, body, "alice-secret")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_feedback_needs_a_key(gateway: Gateway) -> None:
    r = httpx.post(gateway.url + "/feedback", json={"request_id": "x", "score": 1})
    assert r.status_code == 401
