"""Shutting down without losing anything (issue 13, item 7): readiness, the drain on SIGTERM, and
upstream status apart from readiness.

In-process: a drain begun by the test turns /ready to 503 at once, refuses new requests with 503
`shutting_down`, lets what is in flight finish within the grace, then ends the rest cleanly (an
SSE error event and [DONE] for a stream, a 503 for a request still waiting on its upstream), each
with its record. As a process: `tiergate serve` with 20 streams in flight gets SIGTERM: 20 clean
ends, 20 request-log rows, exit code 0, nothing alarming in its log.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from gateway.lifecycle import Drain
from gateway.upstream.probes import CACHE_S
from tests.support.gateway import chat, config, sse_events, start, two_tier_config
from tests.support.paths import REPO
from tests.support.ports import free_port
from tests.support.upstream import Endless, FakeUpstream, Reply, Stall

ADMIN = "sk-admin-key-000"
USER = "sk-user-key-000"
WORDS = " ".join(f"w{i}" for i in range(20))


def arrived(upstream: FakeUpstream, n: int, timeout_s: float = 30) -> None:
    """Wait until `upstream` has received `n` requests."""
    deadline = time.monotonic() + timeout_s
    while len(upstream.history) < n:
        assert time.monotonic() < deadline, f"{len(upstream.history)} of {n} requests arrived"
        time.sleep(0.01)


def read_stream(url: str, body: dict[str, Any]) -> list[str]:
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200, r.read()
        return sse_events(r)


def test_a_drain_refuses_new_work_lets_running_work_finish_then_ends_the_rest(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    drain = Drain(grace_s=1.5)
    gw = start(tmp_path, config(small.url, large.url), drain=drain)
    try:
        assert httpx.get(gw.root + "/ready").json() == {"status": "ready"}
        small.enqueue(
            Reply(WORDS, interval_s=0.04),  # about 0.8 s: finishes within the grace
            Endless(interval_s=0.02),
            Endless(interval_s=0.02),
            Stall(30),  # a JSON request whose upstream never answers in time
        )
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            finite = pool.submit(read_stream, gw.url, chat(stream=True))
            arrived(small, 1)  # each meets the upstream behaviour queued for it, in order
            endless = [pool.submit(read_stream, gw.url, chat(stream=True)) for _ in range(2)]
            arrived(small, 3)
            stalled = pool.submit(gw.post, chat())
            arrived(small, 4)
            began = time.monotonic()
            drain.begin()
            ready = httpx.get(gw.root + "/ready")
            late = gw.post(chat())
            done = finite.result()
            cut = [f.result() for f in endless]
            refused = stalled.result()
            took = time.monotonic() - began
        assert ready.status_code == 503 and ready.json()["reasons"] == ["draining"]
        assert late.status_code == 503 and late.json()["error"]["code"] == "shutting_down"
        assert done[-1] == "[DONE]" and "error" not in done[-2]
        for events in cut:
            assert events[-1] == "[DONE]"
            assert json.loads(events[-2])["error"]["code"] == "shutting_down"
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "shutting_down"
        assert 1.3 < took < 4, took
        records = gw.records.wait(4)
        assert len(records) == 4, "every accepted request has its record; the late one none"
        kinds = sorted(str(r.error_kind) for r in records)
        assert kinds == ["None", "shutting_down", "shutting_down", "shutting_down"]
    finally:
        gw.stop()


def read_events(url: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A Responses stream's (event type, data) pairs."""
    with httpx.stream("POST", url + "/responses", json=body, timeout=60) as r:
        assert r.status_code == 200, r.read()
        return [(e["type"], e) for e in map(json.loads, sse_events(r))]


def test_a_drain_ends_responses_streams_with_their_own_events(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    """/v1/responses streams, translated from chat chunks and passed through from a native
    deployment, end as the Responses API ends a failed stream (`error` with `shutting_down`,
    then `response.failed`), never with chat completions' `[DONE]`; each has its record."""
    cfg = config(small.url, large.url)
    cfg["deployments"]["large-a"].update(
        backend="openai-compatible", capabilities={"responses": True}
    )
    drain = Drain(grace_s=1.0)
    gw = start(tmp_path, cfg, drain=drain)
    try:
        small.enqueue(Endless(interval_s=0.02))
        large.enqueue(Reply(" ".join(["word"] * 400), interval_s=0.05))  # 20 s: past the grace
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            translated = pool.submit(
                read_events, gw.url, {"model": "small-a", "input": "hi", "stream": True}
            )
            native = pool.submit(
                read_events, gw.url, {"model": "large-a", "input": "hi", "stream": True}
            )
            arrived(small, 1)
            arrived(large, 1)
            time.sleep(0.3)  # both relaying
            began = time.monotonic()
            drain.begin()
            ended = [translated.result(), native.result()]
            took = time.monotonic() - began
        for events in ended:
            kinds = [kind for kind, _ in events]
            assert kinds[0] == "response.created" and kinds[-2:] == ["error", "response.failed"]
            assert events[-2][1]["code"] == "shutting_down"
            assert "response.completed" not in kinds
            numbers = [e["sequence_number"] for _, e in events]
            assert numbers == list(range(len(events)))
        assert large.history[0].path == "/v1/responses"
        assert 0.8 < took < 4, took
        records = gw.records.wait(2)
        assert sorted(str(r.error_kind) for r in records) == ["shutting_down", "shutting_down"]
        assert {r.endpoint for r in records} == {"responses"}
    finally:
        gw.stop()


def keyed(small: FakeUpstream, large: FakeUpstream) -> dict[str, Any]:
    cfg = config(small.url, large.url)
    cfg["keys"] = [
        {"id": "admin", "key_sha256": hashlib.sha256(ADMIN.encode()).hexdigest(), "admin": True},
        {"id": "user", "key_sha256": hashlib.sha256(USER.encode()).hexdigest()},
    ]
    return cfg


def test_ready_asks_no_upstream_and_status_says_details_only_to_an_admin(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    gw = start(tmp_path, keyed(small, large))
    try:
        for _ in range(50):
            assert httpx.get(gw.root + "/ready").json() == {"status": "ready"}
        assert small.models_seen == 0 and large.models_seen == 0
        began = time.monotonic()
        counts = httpx.get(gw.root + "/status")
        as_user = httpx.get(gw.root + "/status", headers={"authorization": f"Bearer {USER}"})
        as_admin = httpx.get(gw.root + "/status", headers={"authorization": f"Bearer {ADMIN}"})
        for _ in range(47):
            httpx.get(gw.root + "/status", headers={"authorization": f"Bearer {ADMIN}"})
        rounds = 1 + int((time.monotonic() - began) // CACHE_S)  # one round per window at most
        assert 1 <= small.models_seen <= rounds and large.models_seen == small.models_seen
        assert counts.status_code == 200 and counts.json() == as_user.json()
        assert counts.json() == {
            "status": "ok",
            "tiers": {
                "small": {"available": True, "deployments": 1, "reachable": 1, "circuits_open": 0},
                "large": {"available": True, "deployments": 1, "reachable": 1, "circuits_open": 0},
            },
        }
        for leak in ("127.0.0.1", "http", "small-a", "Error"):
            assert leak not in counts.text
        detail = as_admin.json()["tiers"]["small"]["deployments"]["small-a"]
        assert detail == {"reachable": True, "detail": "reachable", "circuit": "closed"}
    finally:
        gw.stop()
    gw = start(tmp_path, two_tier_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"))
    try:
        assert httpx.get(gw.root + "/ready").status_code == 200, "upstreams are not readiness"
        status = httpx.get(gw.root + "/status").json()
        assert status["status"] == "degraded"
        detail = status["tiers"]["small"]["deployments"]["small-a"]["detail"]
        assert detail == "unreachable (no connection)"
    finally:
        gw.stop()


def test_ready_is_503_when_the_request_log_cannot_be_written(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    """A log directory gone from under the gateway (an unmounted volume) takes it out of the
    load balancer until it is back. (A read-only one does too, for any user but root.)"""
    gw = start(tmp_path, config(small.url, large.url), request_log=True)
    logs, away = tmp_path / "logs", tmp_path / "logs-away"
    try:
        assert httpx.get(gw.root + "/ready").status_code == 200
        logs.rename(away)
        ready = httpx.get(gw.root + "/ready")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not_ready", "reasons": ["request_log_not_writable"]}
        away.rename(logs)
        assert httpx.get(gw.root + "/ready").status_code == 200
    finally:
        if away.exists():
            away.rename(logs)
        gw.stop()


def test_sigterm_with_twenty_streams_ends_all_of_them_writes_every_row_and_exits_0(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    cfg_path = tmp_path / "tiergate.yaml"
    cfg_path.write_text(yaml.safe_dump(config(small.url, large.url)))
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TIERGATE_LOG_DIR": str(tmp_path / "logs"),
        "TIERGATE_DRAIN_GRACE_S": "2",
    }
    argv = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(cfg_path)]
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [*argv, "--port", str(port)], env=env, cwd=tmp_path, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(root + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "tiergate serve did not start"
            time.sleep(0.2)
        for i in range(20):  # half end within the grace, half never end
            small.enqueue(Reply(WORDS, interval_s=0.02) if i % 2 else Endless(interval_s=0.05))
        direct = {**chat(stream=True), "model": "small-a"}  # the real router is not the point
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            streams = [pool.submit(read_stream, root + "/v1", direct) for _ in range(20)]
            arrived(small, 20)
            proc.send_signal(signal.SIGTERM)
            results = [f.result() for f in streams]
        code = proc.wait(timeout=30)
        log = log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, log
    assert all(events[-1] == "[DONE]" for events in results)
    ended = [json.loads(e[-2]).get("error", {}).get("code") for e in results]
    assert sorted(str(c) for c in ended) == ["None"] * 10 + ["shutting_down"] * 10
    with sqlite3.connect(tmp_path / "logs" / "requests.db") as db:
        rows = db.execute("SELECT status_code, error_kind FROM requests").fetchall()
    assert len(rows) == 20
    assert sorted(str(kind) for _, kind in rows) == ["None"] * 10 + ["shutting_down"] * 10
    for alarming in ("Traceback", "Exception in ASGI", "writer is behind", "Cancel "):
        assert alarming not in log, log
