"""Images and audio go only to deployments that take them: the `vision` rule picks the tier, the
planner keeps only capable candidates (fallbacks included), and a request no deployment can take is
a 400 saying what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import config
from tests.support.inprocess import in_process
from tests.support.records import Records
from tests.support.upstream import Fail, FakeUpstream

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}


def ask(*parts: dict[str, Any], model: str = "auto") -> dict[str, Any]:
    content = [{"type": "text", "text": "What is in this picture?"}, *parts]
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def vision_config(small: FakeUpstream, large: FakeUpstream, **caps: dict[str, bool]) -> Any:
    cfg = config(small.url, large.url)
    for name, extra in caps.items():
        cfg["deployments"][name]["capabilities"] = {
            **cfg["deployments"][name].get("capabilities", {}),
            **extra,
        }
    return cfg


async def test_text_with_an_image_goes_to_the_tier_that_takes_images(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    records = Records()
    cfg = vision_config(small, large, **{"large-a": {"vision": True}})
    async with in_process(tmp_path, cfg, sinks=[records]) as client:
        r = await client.post("/v1/chat/completions", json=ask(IMAGE))
        text = await client.post("/v1/chat/completions", json=ask())
    assert r.status_code == 200, r.text
    assert r.headers["x-tiergate-route"] == "large"
    assert records.items[0].decision_reason == "vision"
    assert large.history[0].body["messages"][0]["content"][1] == IMAGE
    assert text.headers["x-tiergate-route"] == "small"  # text alone: the score decides


async def test_a_failing_vision_tier_does_not_fall_back_to_a_text_only_one(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    large.enqueue(Fail(503))
    cfg = vision_config(small, large, **{"large-a": {"vision": True}})
    async with in_process(tmp_path, cfg) as client:
        r = await client.post("/v1/chat/completions", json=ask(IMAGE))
    assert r.status_code == 502
    assert r.headers["x-tiergate-fallback"] == "large-a=server_error"
    assert not small.history


@pytest.mark.parametrize("model", ["auto", "small-a"])
async def test_no_deployment_taking_the_input_is_a_400_naming_it(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, model: str
) -> None:
    async with in_process(tmp_path, config(small.url, large.url)) as client:
        r = await client.post("/v1/chat/completions", json=ask(IMAGE, AUDIO, model=model))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "unsupported_input"
    assert "capabilities.vision" in error["message"] and "capabilities.audio" in error["message"]
    assert not small.history and not large.history


async def test_audio_goes_to_the_tier_that_takes_audio(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> None:
    cfg = vision_config(small, large, **{"small-a": {"audio": True}})
    async with in_process(tmp_path, cfg) as client:
        r = await client.post(
            "/v1/chat/completions", json=ask(AUDIO), headers={"x-tiergate-tier": "large"}
        )
    # The client forced the large tier, which cannot take audio: the small tier serves it.
    assert r.status_code == 200, r.text
    assert r.headers["x-tiergate-route"] == "small"
