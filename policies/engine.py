"""Turning a router score and a request's facts into a routing decision.

`Policy.decide` is pure: no I/O, no clock, no randomness, so one request always gets one answer and
the whole engine is tested with plain values. Rules run first, in the order the policy lists them
(`policies.rules`); the first rule that returns a tier wins. If none does, the score is compared
with the threshold. `build_policies` takes plain policy specs and the tiers' facts, never the
gateway's configuration: the gateway computes `TierFacts` from its deployments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from policies.rules import rules_named
from policies.types import TIERS, Decision, PolicySpec, RouteRequest, TierFacts, TierName


class Policy:
    """One named policy, with its threshold resolved. Build with `build_policies`."""

    def __init__(self, name: str, spec: PolicySpec, threshold: float, facts: TierFacts) -> None:
        self.name = name
        self.spec = spec
        self.threshold = threshold
        self._facts = facts
        self._rules = rules_named(name, spec.rules)

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


def build_policies(
    specs: Mapping[str, PolicySpec],
    facts: TierFacts,
    threshold_for_fraction: Callable[[float], float] | None,
) -> dict[str, Policy]:
    """Resolve every policy's threshold. `threshold_for_fraction` comes from the router's
    calibration; without one, a policy given as a target fraction cannot be built."""
    built: dict[str, Policy] = {}
    for name, spec in specs.items():
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
