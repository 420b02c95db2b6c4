"""Turning a router score and a request's facts into a routing decision.

`Policy.decide` is pure: no I/O, no clock, no randomness, so one request always gets one answer and
the whole engine is tested with plain values. Rules run first, in the order the policy lists them;
the first rule that returns a tier wins. If none does, the score is compared with the threshold.
Rules are plain functions registered with `register_rule`; the built-in ones (`header`, `tools`,
`context`) use the same hook, so a user's rule is a peer of ours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from policies.config import TIERS, GatewayConfig, PolicySpec, TierName


@dataclass(frozen=True)
class RouteRequest:
    """What the policy may know about a request: no text, only facts the gateway extracted."""

    prompt_tokens: int
    needs_tools: bool = False
    forced_tier: TierName | None = None


@dataclass(frozen=True)
class TierFacts:
    """What the rules may know about the tiers, computed once from the config."""

    tools: dict[TierName, bool]
    max_context_tokens: dict[TierName, int]


@dataclass(frozen=True)
class Decision:
    policy: str
    tier: TierName
    reason: str
    p_strong: float
    threshold: float
    fallbacks: tuple[TierName, ...]
    """Tiers to try, in order, after every deployment of `tier` has failed."""


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


class Policy:
    """One named policy, with its threshold resolved. Build with `build_policies`."""

    def __init__(self, name: str, spec: PolicySpec, threshold: float, facts: TierFacts) -> None:
        unknown = [r for r in spec.rules if r not in _RULES]
        if unknown:
            raise ValueError(
                f"policy {name!r} lists unknown rules {unknown}; registered: {list(_RULES)}"
            )
        self.name = name
        self.spec = spec
        self.threshold = threshold
        self._facts = facts
        self._rules = [_RULES[r] for r in spec.rules]

    def decide(self, request: RouteRequest, p_strong: float) -> Decision:
        tier: TierName = "large" if p_strong >= self.threshold else "small"
        reason = "score"
        for rule in self._rules:
            verdict = rule(request, self._facts)
            if verdict is not None:
                tier, reason = verdict
                break
        order = [t for t in self.spec.fallback if t != tier]
        order += [t for t in TIERS if t != tier and t not in order]
        return Decision(self.name, tier, reason, p_strong, self.threshold, tuple(order))


def tier_facts(config: GatewayConfig) -> TierFacts:
    tools: dict[TierName, bool] = {}
    context: dict[TierName, int] = {}
    for name, tier in config.tiers.items():
        deps = [config.deployments[d] for d in tier.deployments]
        tools[name] = any(d.capabilities.tools for d in deps)
        context[name] = max(d.capabilities.max_context_tokens for d in deps)
    return TierFacts(tools, context)


def build_policies(
    config: GatewayConfig, threshold_for_fraction: Callable[[float], float] | None
) -> dict[str, Policy]:
    """Resolve every policy's threshold. `threshold_for_fraction` comes from the router's
    calibration; without one, a policy given as a target fraction cannot be built."""
    facts = tier_facts(config)
    built: dict[str, Policy] = {}
    for name, spec in config.policies.items():
        if spec.threshold is not None:
            threshold = spec.threshold
        elif threshold_for_fraction is None:
            raise ValueError(
                f"policy {name!r} sets target_strong_fraction, but the scorer has no "
                "calibration table; give a threshold instead"
            )
        else:
            assert spec.target_strong_fraction is not None
            threshold = float(threshold_for_fraction(spec.target_strong_fraction))
        built[name] = Policy(name, spec, threshold, facts)
    return built
