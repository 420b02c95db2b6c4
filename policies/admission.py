"""Admission choices: a client's forced tier, and what a budget or rate downgrade leaves to try.

Pure functions over plain values. The gateway's quota (`gateway.access.quota`) counts and reserves;
what to reserve, and which candidates remain when a policy downgrades instead of refusing, is
decided here:

- A policy with `on_over_budget: downgrade` and/or `on_over_rate: downgrade` may send a request
  that is over its key's budget or rate to the small tier instead of refusing it (`downgrades`).
- The budget is reserved at the dearest deployment of the first candidate's tier; a downgradable
  request routed above the small tier also names the small tier's dearest price, its second chance
  (`reservation_costs`).
- After a downgrade only the small tier's candidates remain (`after_downgrade`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Literal, TypeVar

from policies.types import TIERS, PolicySpec, TierName

Downgrade = Literal["budget", "rate"]
"""The limits a policy may downgrade on instead of refusing: `on_over_budget`, `on_over_rate`."""
DOWNGRADE_TIER: TierName = "small"
"""Where a downgraded request goes."""

C = TypeVar("C")


class InvalidTier(ValueError):
    """A forced tier that is not one of `TIERS`; the message says what is accepted."""


def forced_tier(value: str | None) -> TierName | None:
    """The tier a client forces (None: it forces none); `InvalidTier` for any other name."""
    if value is None:
        return None
    for tier in TIERS:
        if value == tier:
            return tier
    raise InvalidTier(f"must be one of {list(TIERS)}; got {value!r}")


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
    routes: Sequence[tuple[TierName | None, float]], downgrade: Collection[Downgrade]
) -> tuple[float, float | None]:
    """(cost to reserve, cost at the small tier or None) for candidates `routes` given in order
    as (tier, estimated cost). The first is the dearest of the first candidate's tier; the second
    is offered only when the request may be downgraded and is not bound for the small tier."""
    first_tier = routes[0][0] if routes else None
    first = max((cost for tier, cost in routes if tier == first_tier), default=0.0)
    small = None
    if downgrade and first_tier != DOWNGRADE_TIER:
        small = max((cost for tier, cost in routes if tier == DOWNGRADE_TIER), default=None)
    return first, small


def after_downgrade(candidates: Sequence[C], tier_of: Callable[[C], TierName | None]) -> list[C]:
    """The candidates a downgraded request may still try: the small tier's, in order."""
    return [c for c in candidates if tier_of(c) == DOWNGRADE_TIER]
