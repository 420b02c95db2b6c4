"""The chat service in process (httpx.ASGITransport): the record each kind of request leaves, as
its ledger writes it: a stream, a fallback, a request no deployment answered."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.gateway import chat, config
from tests.support.inprocess import InProcess, in_process
from tests.support.records import Records
from tests.support.upstream import Fail, FakeUpstream, Reply


async def test_a_streamed_answer_leaves_one_record_with_its_usage(
    inproc: InProcess, small: FakeUpstream
) -> None:
    small.enqueue(Reply(text="one two three", prompt_tokens=5, completion_tokens=3))
    r = await inproc.client.post("/v1/chat/completions", json=chat(stream=True))
    records = inproc.records
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["model"] == "small-a" for c in chunks)
    assert not any(c.get("usage") for c in chunks), "the client did not ask for usage"
    assert "x-tiergate-cost-usd" not in r.headers  # a stream's cost is known only at its end
    (rec,) = records.items
    assert rec.stream and rec.status_code == 200 and rec.deployment == "small-a"
    assert (rec.prompt_tokens, rec.completion_tokens, rec.tokens_estimated) == (5, 3, False)
    assert rec.cost_usd > 0 and rec.counterfactual_cost_usd > rec.cost_usd
    assert rec.ttft_s is not None and rec.upstream_latency_s is not None
    assert rec.overhead_s is not None and rec.overhead_s >= 0
    assert not rec.partial and not rec.client_aborted and rec.fallback_reason is None


async def test_a_fallback_is_recorded_with_the_first_failure(
    inproc: InProcess, small: FakeUpstream
) -> None:
    small.enqueue(Fail(500))
    r = await inproc.client.post("/v1/chat/completions", json=chat())
    records = inproc.records
    assert r.status_code == 200
    assert r.headers["x-tiergate-fallback"] == "small-a=server_error"
    (rec,) = records.items
    assert (rec.intended_tier, rec.served_tier, rec.deployment) == ("small", "large", "large-a")
    assert rec.fallback_reason == "server_error" and rec.error_kind is None


async def test_when_nothing_answers_the_last_failure_is_the_requests(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    records = Records()
    async with in_process(
        tmp_path, config(small.url, large.url), sinks=[records]
    ) as client:
        small.enqueue(Fail(500), Fail(400, "bad option"))
        large.enqueue(Fail(503))
        routed = await client.post("/v1/chat/completions", json=chat())
        direct = await client.post("/v1/chat/completions", json=chat(model="small-a"))
    assert routed.status_code == 502
    assert routed.json()["error"]["code"] == "upstream_server_error"
    assert routed.headers["x-tiergate-fallback"] == "small-a=server_error, large-a=server_error"
    first, second = records.items
    assert (first.status_code, first.error_kind, first.fallback_reason) == (
        502,
        "server_error",
        "server_error",
    )
    assert first.deployment is None and first.served_tier is None
    # One deployment, and it refused the request: no fallback happened.
    assert direct.status_code == 400 and direct.json()["error"]["code"] == "upstream_rejected"
    assert (second.status_code, second.error_kind, second.fallback_reason) == (
        400,
        "client_error",
        None,
    )
