"""Turning a router score and a request's facts into a routing decision.

`Policy.decide` is pure: no I/O, no clock, no randomness, so one request always gets one answer and
the whole engine is tested with plain values. Rules run first, in the order the policy lists them
(`policies.rules`):

- a `Narrow` rules tiers out (tools the cheapest tier cannot call, a context too long, personal data
  under `pii: keep_local`); later picks and the score choose among the tiers left;
- the first pick (`header`, an operator route, a user's rule) whose tier is still allowed decides;
  a pick of a tier an earlier rule ruled out is passed over (no header forces private data off the
  local tiers);
- otherwise the score decides between the cheapest tier left and the most capable one: `p_strong`
  at or above the threshold takes the most capable.

The decision's `reason` names the deciding step: the pick's reason, `score`, or the rule whose
narrowing changed what the score (or a passed-over pick) would have chosen or left the score a
single tier. Fallbacks follow the
policy's `fallback` list, then the config's tier order; tiers ruled out by a `keep_local` narrowing
are never among them. `build_policies` takes plain policy specs and the tiers' facts, never the
gateway's configuration: the gateway computes `TierFacts` from its deployments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from policies.rules import Narrow, Pick, Verdict, rules_named
from policies.types import (
    Decision,
    NoEligibleTier,
    PolicySpec,
    RouteRequest,
    TierFacts,
    TierName,
)


@dataclass
class _Allowed:
    """The tiers still allowed while the rules run, and which rule removed each of the others."""

    tiers: list[TierName]
    removed_by: dict[TierName, str] = field(default_factory=dict)
    keep_local: bool = False
    local_reason: str | None = None
    last_reason: str | None = None
    """The rule whose narrowing last removed a tier."""

    def narrow(self, narrow: Narrow, policy: str, pii: tuple[str, ...]) -> None:
        kept = [t for t in self.tiers if t in narrow.tiers]
        if not kept:
            if narrow.keep_local or self.keep_local:
                raise NoEligibleTier(
                    self.local_reason or narrow.reason,
                    _no_local_tier(policy, pii, narrow, self.tiers),
                )
            return  # nothing could serve it: the constraint is moot, the upstream will say
        for tier in self.tiers:
            if tier not in kept:
                self.removed_by.setdefault(tier, narrow.reason)
        if len(kept) < len(self.tiers):
            self.last_reason = narrow.reason
        self.tiers = kept
        if narrow.keep_local and not self.keep_local:
            self.keep_local, self.local_reason = True, narrow.reason


class Policy:
    """One named policy, with its threshold resolved. Build with `build_policies`."""

    def __init__(self, name: str, spec: PolicySpec, threshold: float, facts: TierFacts) -> None:
        self.name = name
        self.spec = spec
        self.threshold = threshold
        self.facts = facts
        self._rules = rules_named(name, spec.rules)
        self._fallback = tuple(dict.fromkeys(facts.resolve(t) for t in spec.fallback))

    def decide(self, request: RouteRequest, p_strong: float) -> Decision:
        """The tier for `request`; `NoEligibleTier` when its policy forbids every tier that
        could serve it."""
        request = replace(request, pii_action=self.spec.pii)
        order = self.facts.order
        allowed = _Allowed(list(order))
        steps: list[str] = []
        chosen: Pick | None = None
        passed_over: str | None = None
        for name, rule in self._rules:
            verdict = rule(request, self.facts)
            if verdict is None:
                continue
            steps.append(f"{name}: {_describe(verdict)}")
            if isinstance(verdict, Narrow):
                allowed.narrow(verdict, self.name, request.pii)
                continue
            pick = verdict if isinstance(verdict, Pick) else Pick(verdict[0], verdict[1])
            if pick.tier not in order:
                raise ValueError(
                    f"rule {name!r} picked tier {pick.tier!r}; the tiers are {list(order)}"
                )
            if pick.tier in allowed.tiers:
                chosen = pick
                break
            passed_over = passed_over or allowed.removed_by[pick.tier]
        if chosen is None:
            strong = p_strong >= self.threshold
            tier = allowed.tiers[-1] if strong else allowed.tiers[0]
            unconstrained = order[-1] if strong else order[0]
            only = allowed.last_reason if len(allowed.tiers) == 1 else None
            reason = allowed.removed_by.get(unconstrained) or only or passed_over or "score"
            chosen = Pick(tier, reason)
        return Decision(
            self.name,
            chosen.tier,
            chosen.reason,
            p_strong,
            self.threshold,
            self._fallbacks(chosen.tier, allowed),
            deployment=chosen.deployment,
            keep_local=allowed.keep_local,
            redact=bool(request.pii) and self.spec.pii == "redact",
            steps=tuple(steps),
        )

    def _fallbacks(self, tier: TierName, allowed: _Allowed) -> tuple[TierName, ...]:
        order = [t for t in self._fallback if t != tier and t in self.facts.order]
        order += [t for t in self.facts.order if t != tier and t not in order]
        if allowed.keep_local:
            order = [t for t in order if t in allowed.tiers]
        return tuple(order)


def _describe(verdict: Verdict) -> str:
    if isinstance(verdict, Narrow):
        return f"only {', '.join(verdict.tiers) or 'no tier'}"
    if isinstance(verdict, Pick):
        suffix = f" (deployment {verdict.deployment})" if verdict.deployment else ""
        return f"{verdict.tier}{suffix}"
    return verdict[0]


def _no_local_tier(policy: str, pii: tuple[str, ...], narrow: Narrow, left: list[TierName]) -> str:
    found = f"personal data ({', '.join(pii)})" if pii else "personal data"
    if narrow.keep_local:
        return (
            f"the request contains {found} and policy {policy!r} keeps it on local tiers, but no "
            "tier has a deployment marked local: true; remove the data, or add a local deployment"
        )
    return (
        f"the request contains {found} and policy {policy!r} keeps it on local tiers "
        f"({', '.join(left)}), but none of them can serve it ({narrow.reason})"
    )


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
