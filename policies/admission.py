"""Admission choices: a client's forced tier, and what a budget or rate downgrade leaves to try.

Pure functions over plain values. The gateway's quota (`gateway.access.quota`) counts and reserves;
what to reserve, and which candidates remain when a policy downgrades instead of refusing, is
decided here:

- A policy with `on_over_budget: downgrade` and/or `on_over_rate: downgrade` may send a request
  that is over its key's budget or rate to the cheapest tier instead of refusing it (`downgrades`).
- The budget is reserved at the dearest deployment of the first candidate's tier; a downgradable
  request routed above the cheapest tier also names the cheapest tier's dearest price, its second
  chance (`reservation_costs`).
- After a downgrade only the cheapest tier's candidates remain (`after_downgrade`).

The cheapest tier is the config's first (`TierFacts.order[0]`); `small` in the two-tier config.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Literal, TypeVar

from policies.types import TIERS, PolicySpec, TierName

Downgrade = Literal["budget", "rate"]
"""The limits a policy may downgrade on instead of refusing: `on_over_budget`, `on_over_rate`."""
DOWNGRADE_TIER: TierName = TIERS[0]
"""Where a downgraded request goes in the two-tier config; callers pass their cheapest tier."""

C = TypeVar("C")


class InvalidTier(ValueError):
    """A forced tier that is not one of the config's tiers; the message says what is accepted."""


def forced_tier(value: str | None, tiers: Sequence[TierName] = TIERS) -> TierName | None:
    """The tier a client forces (None: it forces none); `InvalidTier` for any other name."""
    if value is None:
        return None
    if value in tiers:
        return value
    raise InvalidTier(f"must be one of {list(tiers)}; got {value!r}")


def downgrades(spec: PolicySpec | None) -> tuple[Downgrade, ...]:
    """The limits `spec` downgrades on instead of refusing (none for a direct request)."""
    if spec is None:
        return ()
    chosen: list[Downgrade] = []
    if spec.on_over_budget == "downgrade":
        chosen.append("budget")
    if spec.on_over_rate == "downgrade":
        chosen.append("rate")
    return tuple(chosen)


def reservation_costs(
    routes: Sequence[tuple[TierName | None, float]],
    downgrade: Collection[Downgrade],
    cheapest: TierName = DOWNGRADE_TIER,
) -> tuple[float, float | None]:
    """(cost to reserve, cost at the `cheapest` tier or None) for candidates `routes` given in
    order as (tier, estimated cost). The first is the dearest of the first candidate's tier; the
    second is offered only when the request may be downgraded and is not bound for `cheapest`."""
    first_tier = routes[0][0] if routes else None
    first = max((cost for tier, cost in routes if tier == first_tier), default=0.0)
    small = None
    if downgrade and first_tier != cheapest:
        small = max((cost for tier, cost in routes if tier == cheapest), default=None)
    return first, small


def after_downgrade(
    candidates: Sequence[C],
    tier_of: Callable[[C], TierName | None],
    cheapest: TierName = DOWNGRADE_TIER,
) -> list[C]:
    """The candidates a downgraded request may still try: the `cheapest` tier's, in order."""
    return [c for c in candidates if tier_of(c) == cheapest]
