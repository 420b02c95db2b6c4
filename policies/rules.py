"""Rules: named functions that may pick a tier before the score is looked at.

A rule takes the request's facts and the tiers' facts and returns `(tier, reason)` or None. Rules
are registered under a name with `register_rule`, and a policy lists the names it runs, in order.
The built-in rules (`header`, `tools`, `context` below, `vision` in `policies.modality`) are
registered through that same hook, so a user's rule is a peer of ours: registering one is
importing a module that decorates a function.

The registry is the one piece of module-level state in `policies/`: it is the plug point, written
at import time by rule modules and only read afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

from policies.types import RouteRequest, TierFacts, TierName

Rule = Callable[[RouteRequest, TierFacts], "tuple[TierName, str] | None"]
_RULES: dict[str, Rule] = {}


def register_rule(name: str) -> Callable[[Rule], Rule]:
    """Register a rule under `name`; policies list rules by these names."""

    def add(rule: Rule) -> Rule:
        if name in _RULES:
            raise ValueError(f"a rule named {name!r} is already registered")
        _RULES[name] = rule
        return rule

    return add


def registered_rules() -> tuple[str, ...]:
    return tuple(_RULES)


def rules_named(policy: str, names: tuple[str, ...]) -> list[Rule]:
    """The rules `names` lists, in order; ValueError naming the unknown ones and the known."""
    unknown = [r for r in names if r not in _RULES]
    if unknown:
        raise ValueError(
            f"policy {policy!r} lists unknown rules {unknown}; registered: {list(_RULES)}"
        )
    return [_RULES[r] for r in names]


@register_rule("header")
def _forced_by_header(request: RouteRequest, facts: TierFacts) -> tuple[TierName, str] | None:
    if request.forced_tier is not None:
        return request.forced_tier, "header"
    return None


@register_rule("tools")
def _tools_need_support(request: RouteRequest, facts: TierFacts) -> tuple[TierName, str] | None:
    if request.needs_tools and not facts.tools["small"] and facts.tools["large"]:
        return "large", "tools"
    return None


@register_rule("context")
def _context_too_long(request: RouteRequest, facts: TierFacts) -> tuple[TierName, str] | None:
    if request.prompt_tokens > facts.max_context_tokens["small"]:
        return "large", "context"
    return None
