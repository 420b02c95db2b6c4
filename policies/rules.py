"""Rules: named functions that pick a tier, or rule tiers out, before the score is looked at.

A rule takes the request's facts and the tiers' facts and returns None (nothing to say), a pick
(`(tier, reason)` or `Pick`: this tier decides) or a `Narrow` (only these tiers can serve the
request; later rules and the score choose among them). Rules are registered under a name with
`register_rule`, and a policy lists the names it runs, in order (`DEFAULT_RULES` when it lists
none). The built-in rules (`pii`, `header`, `tools`, `context`, `routes` below, `vision` in
`policies.modality`) are registered through that same hook, so a user's rule is a peer of ours:
registering one is importing a module that decorates a function. How picks and narrowings
combine is the engine's (`policies.engine`).

The registry is the one piece of module-level state in `policies/`: it is the plug point, written
at import time by rule modules and only read afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from policies.types import RouteRequest, TierFacts, TierName


@dataclass(frozen=True)
class Pick:
    """This tier decides (`deployment`: try that one of its deployments first)."""

    tier: TierName
    reason: str
    deployment: str | None = None


@dataclass(frozen=True)
class Narrow:
    """Only `tiers` can serve the request. `keep_local`: binding on fallbacks too, and only
    deployments marked local may be tried (personal data); a request that no remaining tier can
    serve is then refused instead of sent elsewhere."""

    tiers: tuple[TierName, ...]
    reason: str
    keep_local: bool = False


Verdict = Pick | Narrow | tuple[TierName, str]
Rule = Callable[[RouteRequest, TierFacts], "Verdict | None"]
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


def rules_named(policy: str, names: tuple[str, ...]) -> list[tuple[str, Rule]]:
    """The rules `names` lists, in order; ValueError naming the unknown ones and the known."""
    unknown = [r for r in names if r not in _RULES]
    if unknown:
        raise ValueError(
            f"policy {policy!r} lists unknown rules {unknown}; registered: {list(_RULES)}"
        )
    return [(r, _RULES[r]) for r in names]


@register_rule("pii")
def _personal_data_stays_local(request: RouteRequest, facts: TierFacts) -> Verdict | None:
    """Under `pii: keep_local`, a request with personal data may only reach local tiers."""
    if not request.pii or request.pii_action != "keep_local":
        return None
    return Narrow(tuple(t for t in facts.order if facts.local.get(t)), "pii", keep_local=True)


@register_rule("header")
def _forced_by_header(request: RouteRequest, facts: TierFacts) -> Verdict | None:
    if request.forced_tier is not None:
        return Pick(request.forced_tier, "header")
    return None


@register_rule("tools")
def _tools_need_support(request: RouteRequest, facts: TierFacts) -> Verdict | None:
    """Tools go to tiers that can call them (none can: the upstream decides)."""
    if not request.needs_tools:
        return None
    able = tuple(t for t in facts.order if facts.tools.get(t, True))
    return Narrow(able, "tools") if able and len(able) < len(facts.order) else None


@register_rule("context")
def _context_too_long(request: RouteRequest, facts: TierFacts) -> Verdict | None:
    """A prompt goes to tiers whose context takes it; when none does, to the longest."""
    limits = facts.max_context_tokens
    fits = tuple(t for t in facts.order if request.prompt_tokens <= limits[t])
    if not fits:
        longest = max(limits[t] for t in facts.order)
        fits = tuple(t for t in facts.order if limits[t] == longest)
    return Narrow(fits, "context") if len(fits) < len(facts.order) else None


@register_rule("routes")
def _operator_routes(request: RouteRequest, facts: TierFacts) -> Verdict | None:
    """The operator route the classifier named confidently (none: the score decides)."""
    if request.category is None or request.category not in facts.routes:
        return None
    target = facts.routes[request.category]
    return Pick(facts.resolve(target.tier), f"route:{request.category}", target.deployment)
