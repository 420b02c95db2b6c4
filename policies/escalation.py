"""When a request's cheaper answer is checked and where it escalates to; when it is shadowed.

Pure functions over a policy's settings and its decision. Escalation mode (`EscalateSpec`) applies
to a request the policy routed below the escalation tier `to` in the tiers' order (cheapest
first): a request scored above the threshold already goes to the capable tier, and one the client
forced to a tier (the `header` rule) gets that tier's answer as it is. The gateway runs the checks
and the verifier (`gateway.chat.escalation`); this module only says whether and where.

Shadow judging (`ShadowSpec`) may follow a request a cheaper tier answered; the gateway samples
`fraction` of them and keeps within the budget. A request whose personal data must stay on local
deployments is never shadowed (the gateway passes `keep_local`).
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.types import CHEAPEST, MOST_CAPABLE, TIERS, Decision, PolicySpec, TierName

FORCED = "header"
"""The reason of a decision the client forced: its tier's answer is not second-guessed."""


def escalation_tier(
    spec: PolicySpec | None, decision: Decision | None, order: Sequence[TierName] = TIERS
) -> TierName | None:
    """The tier the cheaper answer escalates to, or None when the answer is final: no policy or
    no `escalate`, a forced tier, or a tier at or past `to`."""
    if spec is None or decision is None or spec.escalate is None or decision.reason == FORCED:
        return None
    to = resolve_tier(spec.escalate.to, order)
    if to not in order or decision.tier not in order:
        return None
    return to if order.index(decision.tier) < order.index(to) else None


def resolve_tier(name: TierName, order: Sequence[TierName]) -> TierName:
    """`name`, with `cheapest` and `most_capable` standing for the first and the last tier."""
    if name == MOST_CAPABLE and order:
        return order[-1]
    if name == CHEAPEST and order:
        return order[0]
    return name


def escalation_tiers(to: TierName, order: Sequence[TierName] = TIERS) -> tuple[TierName, ...]:
    """The tiers an escalated request may be answered by, in order: `to`, then any more capable."""
    return tuple(order[order.index(to) :]) if to in order else (to,)


def shadowed(
    spec: PolicySpec | None,
    served_tier: TierName | None,
    order: Sequence[TierName] = TIERS,
    *,
    keep_local: bool = False,
) -> bool:
    """Whether a request answered by `served_tier` may be shadow-judged (before sampling): its
    policy shadows, a cheaper tier than the most capable answered, and no data must stay local."""
    if spec is None or spec.shadow is None or keep_local or served_tier is None:
        return False
    return served_tier in order and served_tier != order[-1]
