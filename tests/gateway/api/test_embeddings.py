"""`POST /v1/embeddings`: relayed to the named embedding deployment, with usage and cost recorded,
on both backends; never routed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import two_tier_config
from tests.support.inprocess import InProcess, in_process
from tests.support.records import Records
from tests.support.upstream import Fail, FakeUpstream

pytestmark = pytest.mark.usefixtures("backend")  # once per backend (tests/gateway/conftest.py)


@pytest.fixture
async def gw(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> AsyncIterator[InProcess]:
    config: dict[str, Any] = two_tier_config(small.url, large.url)
    config["deployments"]["embedder"] = {
        "model": "openai/text-embedding-3-small",
        "api_base": small.url,
        "price": {"input_per_mtok": 0.02},
        "capabilities": {"embeddings": True},
    }
    records = Records()
    async with in_process(tmp_path, config, sinks=[records]) as client:
        yield InProcess(client, records)


async def test_embeddings_reach_the_named_deployment_with_usage_and_cost(
    gw: InProcess, small: FakeUpstream
) -> None:
    r = await gw.client.post(
        "/v1/embeddings", json={"model": "embedder", "input": ["one two", "three"]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "embedder" and [d["index"] for d in body["data"]] == [0, 1]
    assert len(body["data"][0]["embedding"]) == 8
    assert small.history[-1].path == "/v1/embeddings"
    assert small.history[-1].body["model"] == "text-embedding-3-small"
    assert small.history[-1].body["input"] == ["one two", "three"]
    assert "stream" not in small.history[-1].body
    assert r.headers["x-tiergate-deployment"] == "embedder"
    (rec,) = gw.records.items
    assert (rec.endpoint, rec.deployment) == ("embeddings", "embedder")
    assert rec.decision_reason == "direct"
    assert (rec.prompt_tokens, rec.completion_tokens, rec.tokens_estimated) == (3, 0, False)
    assert rec.cost_usd == pytest.approx(3 * 0.02e-6) == float(r.headers["x-tiergate-cost-usd"])
    assert rec.counterfactual_cost_usd == pytest.approx(rec.cost_usd)


@pytest.mark.parametrize("model", ["auto", "small-a", "nothing"])
async def test_embeddings_are_never_routed(gw: InProcess, model: str) -> None:
    r = await gw.client.post("/v1/embeddings", json={"model": model, "input": "hi"})
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "model_not_found"
    assert "embedding deployments: embedder" in error["message"]
    assert gw.records.items[0].status_code == 404


async def test_an_embedding_upstream_failure_is_the_clients(
    gw: InProcess, small: FakeUpstream
) -> None:
    small.enqueue(Fail(503))
    r = await gw.client.post("/v1/embeddings", json={"model": "embedder", "input": "hi"})
    assert r.status_code == 502
    assert gw.records.items[0].error_kind == "server_error"
