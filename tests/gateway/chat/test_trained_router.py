"""The gateway with the shipped router artifact: real MiniLM, real calibration, real HTTP."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openai import OpenAI

from gateway.app import create_app
from gateway.settings import Settings
from router import Router, load_router
from tests.support.gateway import as_json, chat, two_tier_config
from tests.support.upstream import FakeUpstream, serve_in_thread

pytestmark = pytest.mark.usefixtures("backend")  # once per backend (tests/gateway/conftest.py)

# The pair the router's own tests pin on either side of the balanced threshold.
EASY = 'Translate "good morning" into Spanish.'
HARD = (
    "Write a Python function that, given a list of intervals, merges all overlapping intervals, "
    "then prove its time complexity is O(n log n) and give a step-by-step derivation."
)


@pytest.fixture(scope="module")
def trained() -> Router:
    return load_router()


@pytest.fixture
def routed(
    tmp_path: Path, trained: Router, small: FakeUpstream, large: FakeUpstream
) -> Iterator[str]:
    config = two_tier_config(small.url, large.url)
    config["policies"] = {}  # the presets: targets turned into thresholds by the calibration
    path = tmp_path / "tiergate.yaml"
    path.write_text(yaml.safe_dump(config))
    app = create_app(Settings(config_path=path, log_dir=tmp_path / "logs"), scorer=trained, env={})
    server, thread, sock = serve_in_thread(app)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=15)


def test_easy_and_hard_prompts_take_different_tiers(routed: str, trained: Router) -> None:
    with OpenAI(base_url=routed + "/v1", api_key="unused", max_retries=0) as client:
        easy = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": EASY}]
        )
        hard = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": HARD}]
        )
        assert easy.headers["x-tiergate-route"] == "small"
        assert hard.headers["x-tiergate-route"] == "large"
        threshold = trained.threshold_for_fraction(0.5)
        assert (
            float(easy.headers["x-tiergate-score"])
            < threshold
            <= float(hard.headers["x-tiergate-score"])
        )
        # The header carries the router's own score for that conversation.
        direct = trained.score([[{"role": "user", "content": HARD}]])[0]
        assert float(hard.headers["x-tiergate-score"]) == pytest.approx(direct, abs=1e-4)


def test_policies_get_thresholds_from_the_calibration(routed: str, trained: Router) -> None:
    cards = httpx.get(routed + "/v1/models").json()["data"]
    by_id = {c["id"]: c["tiergate"] for c in cards}
    for name, fraction in (("cost-saver", 0.2), ("balanced", 0.5), ("quality-first", 0.8)):
        assert by_id[f"auto:{name}"]["threshold"] == pytest.approx(
            trained.threshold_for_fraction(fraction)
        )
    assert by_id["auto:cost-saver"]["threshold"] > by_id["auto:quality-first"]["threshold"]
    assert by_id["auto"]["router"]["name"]


def test_three_lone_surrogates_among_forty_fail_only_themselves(routed: str) -> None:
    """The issue's case with the real tokenizer: 29-31 of the 37 good requests got 500."""
    bad = {4, 19, 31}
    bodies = [
        as_json(chat("x\ud800y" if i in bad else f"{EASY} ({i})" if i % 2 else f"{HARD} ({i})"))
        for i in range(40)
    ]

    def post(sent: dict[str, Any]) -> int:
        return httpx.post(routed + "/v1/chat/completions", **sent, timeout=120).status_code

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(post, bodies))
    assert [c for i, c in enumerate(codes) if i not in bad] == [200] * 37, codes
    assert [codes[i] for i in sorted(bad)] == [400] * 3
