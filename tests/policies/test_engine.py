from __future__ import annotations

import pytest

from gateway.config import parse_config
from policies import RouteRequest, TierFacts, build_policies, register_rule, registered_rules


def config(**over: object):  # type: ignore[no-untyped-def]
    raw: dict[str, object] = {
        "deployments": {
            "s": {"model": "openai/s", "capabilities": {"tools": False, "max_context_tokens": 100}},
            "l": {"model": "openai/l"},
        },
        "tiers": {"small": {"deployments": ["s"]}, "large": {"deployments": ["l"]}},
        "policies": {"t": {"threshold": 0.5}},
        "default_policy": "t",
    }
    raw.update(over)
    return parse_config(raw)


def policy(name: str = "t", **over: object):  # type: ignore[no-untyped-def]
    cfg = config(**over)
    return build_policies(cfg.policies, cfg.tier_facts(), lambda f: 1.0 - f)[name]


def test_threshold_splits_scores() -> None:
    p = policy()
    assert p.decide(RouteRequest(10), 0.49).tier == "small"
    high = p.decide(RouteRequest(10), 0.5)
    assert (high.tier, high.reason, high.threshold) == ("large", "score", 0.5)


def test_header_rule_wins_over_score_and_other_rules() -> None:
    d = policy().decide(RouteRequest(10_000, needs_tools=True, forced_tier="small"), 0.99)
    assert (d.tier, d.reason) == ("small", "header")


def test_tools_go_large_when_small_tier_cannot_call_tools() -> None:
    d = policy().decide(RouteRequest(10, needs_tools=True), 0.0)
    assert (d.tier, d.reason) == ("large", "tools")


def test_tools_stay_small_when_small_tier_supports_them() -> None:
    over = {"deployments": {"s": {"model": "openai/s"}, "l": {"model": "openai/l"}}}
    d = policy(**over).decide(RouteRequest(10, needs_tools=True), 0.0)
    assert (d.tier, d.reason) == ("small", "score")


def test_context_longer_than_small_tier_goes_large() -> None:
    p = policy()
    assert p.decide(RouteRequest(100), 0.0).tier == "small"
    d = p.decide(RouteRequest(101), 0.0)
    assert (d.tier, d.reason) == ("large", "context")


def test_rules_are_only_those_the_policy_lists() -> None:
    p = policy(policies={"t": {"threshold": 0.5, "rules": []}})
    assert p.decide(RouteRequest(10_000, needs_tools=True), 0.0).tier == "small"


def test_target_fraction_uses_the_calibration() -> None:
    p = policy("cost-saver")
    assert p.threshold == pytest.approx(0.8)
    assert p.decide(RouteRequest(1), 0.79).tier == "small"
    assert p.decide(RouteRequest(1), 0.81).tier == "large"


def test_target_fraction_without_calibration_is_refused() -> None:
    with pytest.raises(ValueError, match="has no calibration table"):
        build_policies(config().policies, config().tier_facts(), None)


def test_fallback_order_follows_the_policy_then_remaining_tiers() -> None:
    p = policy(policies={"t": {"threshold": 0.5, "fallback": ["large"]}})
    assert p.decide(RouteRequest(1), 0.1).fallbacks == ("large",)
    assert p.decide(RouteRequest(1), 0.9).fallbacks == ("small",)
    q = policy("quality-first")
    assert q.decide(RouteRequest(1), 0.9).fallbacks == ("small",)


def test_user_rules_register_through_the_same_hook() -> None:
    name = "test-short-prompts-stay-small"
    if name not in registered_rules():

        @register_rule(name)
        def short_stays_small(request: RouteRequest, facts: TierFacts):  # type: ignore[no-untyped-def]
            return ("small", "short") if request.prompt_tokens < 5 else None

    p = policy(policies={"t": {"threshold": 0.5, "rules": [name]}})
    assert (p.decide(RouteRequest(3), 0.99).reason) == "short"
    assert p.decide(RouteRequest(30), 0.99).tier == "large"
    with pytest.raises(ValueError, match="already registered"):
        register_rule(name)(lambda r, f: None)


def test_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown rules \['nope'\]"):
        policy(policies={"t": {"threshold": 0.5, "rules": ["nope"]}})
