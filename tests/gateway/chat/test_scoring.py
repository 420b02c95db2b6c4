"""The router's micro-batches (issue 13, item 1): one request the router cannot score fails only
itself, never the other requests of its batch."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from gateway.chat.scoring import BatchingScorer
from tests.support.gateway import as_json, chat, config, start
from tests.support.upstream import FakeUpstream


class Picky:
    """Scores 0.5, and raises for any batch holding "bad"; counts its calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.info = {"name": "picky"}

    def score(self, items: Sequence[Any]) -> np.ndarray:
        self.calls.append(len(items))
        if any("bad" in str(i) for i in items):
            raise ValueError("cannot score")
        return np.full(len(items), 0.5)

    def threshold_for_fraction(self, fraction: float) -> float:
        return 0.5


async def test_a_failing_item_fails_only_its_own_request() -> None:
    picky = Picky()
    batcher = BatchingScorer(picky, max_batch=32)
    items = ["bad" if i in (3, 7) else f"good {i}" for i in range(12)]
    try:
        results = await asyncio.gather(*(batcher.score(i) for i in items), return_exceptions=True)
    finally:
        await batcher.aclose()
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [3, 7]
    assert all(r.p_strong == 0.5 for r in results if not isinstance(r, BaseException))
    assert picky.calls[0] == 12, "the batch was tried whole first"


def burst(gw_url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    def post(body: dict[str, Any]) -> httpx.Response:
        return httpx.post(gw_url + "/chat/completions", **as_json(body), timeout=60)

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


@pytest.mark.parametrize("poison", ["x\ud800y", "POISON"])
def test_three_bad_prompts_among_forty_fail_only_themselves(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, poison: str
) -> None:
    """The issue's case (a lone surrogate made the router's tokenizer raise: 29-31 of 37 good
    requests got 500), and an item that only the router refuses."""
    gw = start(tmp_path, config(small.url, large.url))
    gw.running.scorer.delay_s = 0.05  # requests pile up into batches, as before a busy encoder
    try:
        bad = {5, 17, 33}
        bodies = [chat(poison if i in bad else f"question {i}") for i in range(40)]
        for _ in range(2):
            responses = burst(gw.url, bodies)
            good = [r.status_code for i, r in enumerate(responses) if i not in bad]
            assert good == [200] * 37, good
            refused = [responses[i] for i in sorted(bad)]
            if "\ud800" in poison:  # caught where the body is parsed: the client's error
                assert [r.status_code for r in refused] == [400] * 3
                assert refused[0].json()["error"]["param"] == "messages[0].content"
            else:  # the router's own failure: a 500 for that request alone
                assert [r.status_code for r in refused] == [500] * 3
        assert max(gw.running.scorer.batches) > 1, "the requests were batched"
    finally:
        gw.stop()
