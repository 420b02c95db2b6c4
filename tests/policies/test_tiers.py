"""Any number of tiers, operator routes, and personal data, decided with plain values.

A three-tier config (`small` local and without tools, `coder`, `large`) with routes to each tier
and one to a deployment; the engine's rules as the default list runs them."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import parse_config
from policies import (
    DEFAULT_RULES,
    NoEligibleTier,
    Pick,
    Policy,
    RouteRequest,
    TierFacts,
    after_downgrade,
    build_policies,
    forced_tier,
    register_rule,
    registered_rules,
    reservation_costs,
)

EXAMPLES = [f"example {i}" for i in range(5)]


def config(**over: Any):  # type: ignore[no-untyped-def]
    raw: dict[str, Any] = {
        "deployments": {
            "s": {
                "model": "openai/s",
                "local": True,
                "capabilities": {"tools": False, "max_context_tokens": 100},
            },
            "c1": {"model": "openai/c1", "capabilities": {"max_context_tokens": 1000}},
            "c2": {"model": "openai/c2", "capabilities": {"max_context_tokens": 1000}},
            "l": {"model": "openai/l", "capabilities": {"max_context_tokens": 10_000}},
        },
        "tiers": {
            "small": {"deployments": ["s"]},
            "coder": {"deployments": ["c1", "c2"]},
            "large": {"deployments": ["l"]},
        },
        "routes": {
            "chat": {"tier": "small", "examples": EXAMPLES},
            "code": {"tier": "coder", "examples": EXAMPLES},
            "proofs": {"tier": "large", "examples": EXAMPLES},
            "c2-only": {"deployment": "c2", "examples": EXAMPLES},
            "capable": {"tier": "most_capable", "examples": EXAMPLES},
        },
        "policies": {"t": {"threshold": 0.5}},
        "default_policy": "t",
    }
    raw.update(over)
    return parse_config(raw)


def policy(name: str = "t", **over: Any) -> Policy:
    cfg = config(**over)
    return build_policies(cfg.policies, cfg.tier_facts(), lambda f: 1.0 - f)[name]


def route(category: str | None = None, **kw: Any) -> RouteRequest:
    return RouteRequest(10, category=category, category_probability=0.9 if category else 0.2, **kw)


def test_the_score_chooses_between_the_cheapest_and_the_most_capable_tier() -> None:
    p = policy()
    assert p.facts.order == ("small", "coder", "large")
    assert (p.decide(route(), 0.2).tier, p.decide(route(), 0.2).reason) == ("small", "score")
    assert p.decide(route(), 0.8).tier == "large"


def test_routes_reach_every_tier_and_a_deployment() -> None:
    p = policy()
    for category, tier in (("chat", "small"), ("code", "coder"), ("proofs", "large")):
        for score in (0.1, 0.9):
            d = p.decide(route(category), score)
            assert (d.tier, d.reason, d.deployment) == (tier, f"route:{category}", None)
    d = p.decide(route("c2-only"), 0.1)
    assert (d.tier, d.deployment, d.reason) == ("coder", "c2", "route:c2-only")
    assert p.decide(route("capable"), 0.1).tier == "large"


def test_without_a_confident_route_the_score_decides() -> None:
    """The gateway passes no category when no route reached route_confidence."""
    p = policy()
    low = RouteRequest(10, category=None, category_probability=0.4)
    assert (p.decide(low, 0.9).tier, p.decide(low, 0.9).reason) == ("large", "score")
    assert p.decide(low, 0.1).tier == "small"


def test_fallbacks_name_tiers_in_the_policys_order_then_the_configs() -> None:
    p = policy()
    assert p.decide(route(), 0.1).fallbacks == ("coder", "large")
    assert p.decide(route("code"), 0.1).fallbacks == ("small", "large")
    ordered = policy(policies={"t": {"threshold": 0.5, "fallback": ["large", "coder"]}})
    assert ordered.decide(route(), 0.1).fallbacks == ("large", "coder")
    assert ordered.decide(route("proofs"), 0.1).fallbacks == ("coder", "small")
    aliased = policy(policies={"t": {"threshold": 0.5, "fallback": ["most_capable"]}})
    assert aliased.decide(route("code"), 0.1).fallbacks == ("large", "small")


def test_tools_go_to_the_cheapest_able_tier_or_the_most_capable() -> None:
    p = policy()
    low = p.decide(RouteRequest(10, needs_tools=True), 0.1)
    assert (low.tier, low.reason) == ("coder", "tools")
    high = p.decide(RouteRequest(10, needs_tools=True), 0.9)
    assert (high.tier, high.reason) == ("large", "score")
    # A route to a tier that cannot call tools gives way; the narrowing is the reason.
    chat = p.decide(route("chat", needs_tools=True), 0.1)
    assert (chat.tier, chat.reason) == ("coder", "tools")


def test_context_goes_to_the_cheapest_tier_that_takes_it() -> None:
    p = policy()
    assert p.decide(RouteRequest(500), 0.1).tier == "coder"
    assert p.decide(RouteRequest(5000), 0.1).tier == "large"
    too_long = p.decide(RouteRequest(50_000), 0.1)
    assert (too_long.tier, too_long.reason) == ("large", "context")


def test_a_header_forces_any_tier_of_the_config() -> None:
    d = policy().decide(route("proofs", forced_tier="coder"), 0.9)
    assert (d.tier, d.reason) == ("coder", "header")
    assert forced_tier("coder", ("small", "coder", "large")) == "coder"


def test_the_default_rules_and_a_policys_own_list() -> None:
    assert DEFAULT_RULES == ("pii", "header", "vision", "tools", "context", "routes")
    assert config().policies["t"].rules == DEFAULT_RULES
    own = policy(policies={"t": {"threshold": 0.5, "rules": ["header"]}})
    assert own.decide(route("proofs"), 0.1).tier == "small"


def test_a_rule_picking_a_tier_the_config_lacks_is_a_bug_named() -> None:
    name = "test-picks-medium"
    if name not in registered_rules():

        @register_rule(name)
        def medium(request: RouteRequest, facts: TierFacts) -> Pick:
            return Pick("medium", "mine")

    p = policy(policies={"t": {"threshold": 0.5, "rules": [name]}})
    with pytest.raises(ValueError, match="rule 'test-picks-medium' picked tier 'medium'"):
        p.decide(route(), 0.1)


# ---- personal data ------------------------------------------------------------------------------


def private(pii: str, **spec: Any) -> Policy:
    return policy(policies={"t": {"threshold": 0.5, "pii": pii, **spec}})


def test_keep_local_stays_on_local_tiers_whatever_the_header_or_route_says() -> None:
    p = private("keep_local")
    d = p.decide(route("proofs", forced_tier="large", pii=("email",)), 0.9)
    assert (d.tier, d.reason, d.keep_local, d.fallbacks) == ("small", "pii", True, ())
    assert d.steps[0] == "pii: only small"
    # Without personal data nothing changes.
    clean = p.decide(route("proofs"), 0.1)
    assert (clean.tier, clean.keep_local) == ("large", False)


def test_keep_local_without_a_local_tier_is_refused() -> None:
    cfg = config()
    deployments = {
        n: {**d.model_dump(exclude_defaults=True), "local": False}
        for n, d in cfg.deployments.items()
    }
    p = policy(deployments=deployments, policies={"t": {"threshold": 0.5, "pii": "keep_local"}})
    with pytest.raises(NoEligibleTier, match="no tier has a deployment marked local") as info:
        p.decide(route(pii=("card",)), 0.1)
    assert info.value.reason == "pii"


def test_keep_local_when_the_local_tier_cannot_serve_it_is_refused() -> None:
    p = private("keep_local")
    with pytest.raises(NoEligibleTier, match=r"none of them can serve it \(tools\)") as info:
        p.decide(route(needs_tools=True, pii=("email",)), 0.1)
    assert info.value.reason == "pii"


def test_redact_routes_as_usual_and_asks_for_placeholders() -> None:
    d = private("redact").decide(route("proofs", pii=("phone",)), 0.1)
    assert (d.tier, d.reason, d.redact, d.keep_local) == ("large", "route:proofs", True, False)
    assert not private("redact").decide(route("proofs"), 0.1).redact


def test_pii_needs_the_pii_rule() -> None:
    with pytest.raises(ValueError, match="pii: keep_local needs the pii rule"):
        config(policies={"t": {"threshold": 0.5, "pii": "keep_local", "rules": ["header"]}})


def test_downgrades_go_to_the_cheapest_tier() -> None:
    routes = [("coder", 0.5), ("large", 0.7), ("small", 0.01)]
    assert reservation_costs(routes, ("budget",), "small") == (0.5, 0.01)
    assert reservation_costs([("mini", 0.01)], ("budget",), "mini") == (0.01, None)
    tiers = {"a": "mini", "b": "max", "c": "mini"}
    assert after_downgrade(["a", "b", "c"], tiers.get, "mini") == ["a", "c"]
