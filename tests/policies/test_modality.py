"""The `vision` rule: images and audio go to a tier that takes them; the score decides otherwise."""

from __future__ import annotations

import pytest

from gateway.config import parse_config
from policies import Policy, RouteRequest, TierFacts, build_policies, registered_rules


def policy(small: dict[str, bool], large: dict[str, bool]) -> Policy:
    cfg = parse_config(
        {
            "deployments": {
                "s": {"model": "openai/s", "capabilities": small},
                "l": {"model": "openai/l", "capabilities": large},
            },
            "tiers": {"small": {"deployments": ["s"]}, "large": {"deployments": ["l"]}},
            "policies": {"t": {"threshold": 0.5}},
            "default_policy": "t",
        }
    )
    return build_policies(cfg.policies, cfg.tier_facts(), lambda f: 1.0 - f)["t"]


def test_vision_is_a_default_rule_registered_like_any_other() -> None:
    assert "vision" in registered_rules()
    assert "vision" in policy({}, {}).spec.rules


def test_an_image_goes_to_the_only_tier_that_takes_images() -> None:
    p = policy({"vision": False}, {"vision": True})
    d = p.decide(RouteRequest(10, modalities=frozenset({"image"})), 0.0)
    assert (d.tier, d.reason) == ("large", "vision")
    p = policy({"vision": True}, {"vision": False})
    d = p.decide(RouteRequest(10, modalities=frozenset({"image"})), 0.99)
    assert (d.tier, d.reason) == ("small", "vision")


def test_text_alone_and_tiers_that_all_take_images_leave_it_to_the_score() -> None:
    p = policy({"vision": False}, {"vision": True})
    assert p.decide(RouteRequest(10), 0.0).reason == "score"
    both = policy({"vision": True}, {"vision": True})
    d = both.decide(RouteRequest(10, modalities=frozenset({"image"})), 0.0)
    assert (d.tier, d.reason) == ("small", "score")


@pytest.mark.parametrize(
    ("small", "large", "tier"),
    [
        ({"audio": False}, {"audio": True}, "large"),
        ({"audio": True, "vision": True}, {"audio": True}, "small"),
    ],
)
def test_audio_and_images_together_need_a_tier_that_takes_both(
    small: dict[str, bool], large: dict[str, bool], tier: str
) -> None:
    modalities = frozenset({"audio"} if "vision" not in small else {"audio", "image"})
    d = policy(small, large).decide(RouteRequest(10, modalities=modalities), 0.5)  # type: ignore[arg-type]
    assert (d.tier, d.reason) == (tier, "vision")


def test_no_tier_taking_the_input_is_left_to_the_gateway() -> None:
    d = policy({}, {}).decide(RouteRequest(10, modalities=frozenset({"image"})), 0.0)
    assert d.reason == "score"


def test_tier_facts_default_to_no_images_and_no_audio() -> None:
    facts = TierFacts({"small": True, "large": True}, {"small": 10, "large": 10})
    assert facts.vision == {} and facts.audio == {}
