"""Named tiers in the order listed, operator routes and their targets, local deployments, pii
patterns: what the config accepts and what it refuses, naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError, parse_config
from policies import RouteTarget
from router.route_specs import parse_routes

EXAMPLES = [f"example {i}" for i in range(5)]


def raw(**over: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "deployments": {
            "s": {"model": "openai/s", "local": True},
            "c": {"model": "openai/c", "capabilities": {"tools": False}},
            "l": {"model": "openai/l"},
        },
        "tiers": {
            "mini": {"deployments": ["s"]},
            "coder": {"deployments": ["c"]},
            "max": {"deployments": ["l"]},
        },
    }
    config.update(over)
    return config


def test_tiers_are_ordered_as_listed_and_small_stays_before_large() -> None:
    assert parse_config(raw()).tier_order() == ("mini", "coder", "max")
    two = raw(tiers={"large": {"deployments": ["l"]}, "small": {"deployments": ["s"]}})
    assert parse_config(two).tier_order() == ("small", "large")


def test_tier_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="declare at least two"):
        parse_config(raw(tiers={"only": {"deployments": ["s"]}}))
    for bad in ("most_capable", "has space"):
        tiers = {bad: {"deployments": ["s"]}, "max": {"deployments": ["l"]}}
        with pytest.raises(ConfigError, match=f"tier name '{bad}'"):
            parse_config(raw(tiers=tiers))


def test_fallbacks_name_tiers_or_the_two_aliases() -> None:
    ok = parse_config(raw(policies={"p": {"threshold": 0.5, "fallback": ["max", "cheapest"]}}))
    assert ok.policies["p"].fallback == ("max", "cheapest")
    with pytest.raises(ConfigError, match=r"policies\.p\.fallback names tier 'large'"):
        parse_config(raw(policies={"p": {"threshold": 0.5, "fallback": ["large"]}}))


def test_facts_say_which_tiers_are_local_and_where_routes_go() -> None:
    config = parse_config(
        raw(
            routes={
                "code": {"tier": "coder", "examples": EXAMPLES},
                "big": {"deployment": "l", "examples": EXAMPLES, "description": "large jobs"},
            }
        )
    )
    facts = config.tier_facts()
    assert facts.order == ("mini", "coder", "max")
    assert facts.local == {"mini": True, "coder": False, "max": False}
    assert facts.tools == {"mini": True, "coder": False, "max": True}
    assert facts.routes == {"code": RouteTarget("coder"), "big": RouteTarget("max", "l")}
    assert config.route_confidence == 0.6


def test_a_preset_expands_and_its_routes_can_move() -> None:
    config = parse_config(raw(routes={"preset": "general", "code": {"tier": "coder"}}))
    assert list(config.routes)[:5] == [
        "small-talk",
        "rewriting",
        "translation",
        "extraction",
        "formatting",
    ]
    assert config.routes["small-talk"].tier == "cheapest"
    assert config.routes["proofs"].tier == "most_capable"
    assert config.routes["code"].tier == "coder" and len(config.routes["code"].examples) >= 5
    facts = config.tier_facts()
    assert facts.resolve(facts.routes["proofs"].tier) == "max"
    # What the gateway fits is what `tiergate router fit-routes --config` fits: one cache entry.
    routes = {"preset": "general", "code": {"tier": "coder"}}
    assert config.route_specs() == parse_routes(routes)


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"examples": EXAMPLES}, "give exactly one of tier and deployment"),
        ({"tier": "max", "deployment": "l", "examples": EXAMPLES}, "exactly one of tier"),
        ({"tier": "huge", "examples": EXAMPLES}, r"routes\.billing\.tier 'huge'"),
        ({"deployment": "nope", "examples": EXAMPLES}, "'nope' is not in any tier"),
        ({"tier": "max", "examples": EXAMPLES[:4]}, "has 4 distinct example"),
        ({"tier": "max", "examples": EXAMPLES, "colour": "red"}, "unknown field"),
    ],
)
def test_a_bad_route_is_refused_naming_it(route: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(raw(routes={"billing": route}))


def test_route_names_and_presets_are_checked() -> None:
    with pytest.raises(ConfigError, match="route name 'none' is not accepted"):
        parse_config(raw(routes={"none": {"tier": "max", "examples": EXAMPLES}}))
    with pytest.raises(ConfigError, match="unknown preset 'everything'"):
        parse_config(raw(routes={"preset": "everything"}))
    with pytest.raises(ConfigError, match="route_confidence"):
        parse_config(raw(route_confidence=0))


def test_pii_patterns_must_compile() -> None:
    assert parse_config(raw(pii_patterns={"employee_id": r"EMP-\d{6}"})).pii_patterns
    with pytest.raises(ConfigError, match="'ids': not a valid regular expression"):
        parse_config(raw(pii_patterns={"ids": "(unclosed"}))
