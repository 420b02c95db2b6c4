"""Admission choices, pure: a forced tier, what a policy downgrades on, what to reserve, and what
a downgrade leaves to try."""

from __future__ import annotations

import pytest

from policies import (
    InvalidTier,
    PolicySpec,
    after_downgrade,
    downgrades,
    forced_tier,
    reservation_costs,
)


def test_a_forced_tier_must_be_one_of_the_tiers() -> None:
    assert forced_tier(None) is None
    assert forced_tier("large") == "large"
    with pytest.raises(InvalidTier, match=r"must be one of \['small', 'large'\]; got 'medium'"):
        forced_tier("medium")


def test_what_a_policy_downgrades_on() -> None:
    assert downgrades(None) == ()
    assert downgrades(PolicySpec(threshold=0.5)) == ()
    both = PolicySpec(threshold=0.5, on_over_budget="downgrade", on_over_rate="downgrade")
    assert downgrades(both) == ("budget", "rate")
    assert downgrades(PolicySpec(threshold=0.5, on_over_rate="downgrade")) == ("rate",)


def test_reserve_the_dearest_of_the_first_tier_and_offer_the_small_tier() -> None:
    routes = [("large", 0.5), ("large", 0.7), ("small", 0.01), ("small", 0.02)]
    assert reservation_costs(routes, ()) == (0.7, None)
    assert reservation_costs(routes, ("budget",)) == (0.7, 0.02)
    # Bound for the small tier anyway: there is nothing to downgrade to.
    assert reservation_costs([("small", 0.01), ("large", 0.7)], ("rate",)) == (0.01, None)
    assert reservation_costs([], ("budget",)) == (0.0, None)


def test_a_downgrade_leaves_the_small_tiers_candidates_in_order() -> None:
    tiers = {"big": "large", "s1": "small", "s2": "small"}
    assert after_downgrade(["big", "s2", "s1"], tiers.get) == ["s2", "s1"]
