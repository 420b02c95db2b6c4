"""Metrics against hand-computed cases: oracle above 1, inverted below 0, random near 0.5."""

from __future__ import annotations

import math

import numpy as np
import pytest

from router.errors import RouterError
from router.training.labels import make_labels, strong_only, weak_wrong
from router.training.metrics import oracle_scores, quality_curve, random_metrics, routing_metrics

# Five prompts: one only the weak model gets right, two only the strong one, one both, one neither.
WEAK = np.array([1.0, 0.0, 0.0, 1.0, 0.0])
STRONG = np.array([1.0, 1.0, 1.0, 0.0, 0.0])


def test_oracle_by_hand() -> None:
    # Order: the two strong-only prompts (tied), the two with gain 0 (tied), the weak-only one.
    # Curve: (0, .4) (.4, .8) (.8, .8) (1, .6); AUC = .24 + .32 + .14 = .70.
    fractions, quality = quality_curve(oracle_scores(WEAK, STRONG), WEAK, STRONG)
    assert fractions.tolist() == pytest.approx([0, 0.4, 0.8, 1.0])
    assert quality.tolist() == pytest.approx([0.4, 0.8, 0.8, 0.6])
    m = routing_metrics(oracle_scores(WEAK, STRONG), WEAK, STRONG)
    assert m.weak_accuracy == pytest.approx(0.4) and m.strong_accuracy == pytest.approx(0.6)
    assert m.auc == pytest.approx(0.70)
    assert m.apgr == pytest.approx(1.5)  # (0.70 - 0.4) / 0.2: the oracle beats 1
    assert m.cpt50 == pytest.approx(0.1)  # quality 0.5 halfway up the first segment
    assert m.cpt80 == pytest.approx(0.16)  # quality 0.56


def test_inverted_by_hand() -> None:
    # Curve: (0, .4) (.2, .2) (.6, .2) (1, .6); AUC = .06 + .08 + .16 = .30; APGR = -0.5.
    m = routing_metrics(-oracle_scores(WEAK, STRONG), WEAK, STRONG)
    assert m.auc == pytest.approx(0.30)
    assert m.apgr == pytest.approx(-0.5)
    assert m.cpt50 == pytest.approx(0.9)  # from .2 at .6 to .6 at 1: reaches .5 at .75 of the way


def test_constant_score_is_exactly_the_random_router() -> None:
    m = random_metrics(WEAK, STRONG)
    assert m.auc == pytest.approx(0.5)
    assert m.apgr == pytest.approx(0.5)
    assert (m.cpt50, m.cpt80) == (pytest.approx(0.5), pytest.approx(0.8))


def test_random_scores_are_near_half() -> None:
    rng = np.random.default_rng(7)
    weak = (rng.random(20_000) < 0.5).astype(float)
    strong = np.maximum(weak, rng.random(20_000) < 0.4).astype(float)
    m = routing_metrics(rng.random(20_000), weak, strong)
    assert m.apgr == pytest.approx(0.5, abs=0.03)
    # No weak-only prompts here, so the oracle is 1 - p/2 (p = strong-only share), not above 1.
    assert routing_metrics(oracle_scores(weak, strong), weak, strong).apgr > 0.85


def test_no_gap_means_no_apgr() -> None:
    m = routing_metrics(np.array([0.2, 0.8]), np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert math.isnan(m.apgr) and math.isnan(m.cpt50)
    assert m.as_dict()["apgr"] is None


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="equal length"):
        routing_metrics(np.zeros(2), WEAK, STRONG)


def test_labels() -> None:
    assert weak_wrong(WEAK, STRONG).tolist() == [0, 1, 1, 0, 1]
    assert strong_only(WEAK, STRONG).tolist() == [0, 1, 1, 0, 0]
    graded_weak = np.array([8 / 9, 6 / 9, 0.4])
    graded_strong = np.ones(3)
    assert make_labels("weak_wrong", graded_weak, graded_strong, 0.5).tolist() == [0, 0, 1]
    assert make_labels("weak_wrong", graded_weak, graded_strong, 7 / 9).tolist() == [0, 1, 1]
    assert make_labels("strong_only", graded_weak, graded_strong, 7 / 9).tolist() == [0, 1, 1]
    # Panel labels: soft targets from the panel means; the pair stands in where a mean is NaN.
    small = np.array([0.5, 1 / 6, np.nan, np.nan, 0.0])
    large = np.array([1.0, 2 / 3, np.nan, np.nan, 1.0])
    assert make_labels("small_fail", WEAK, STRONG, small=small, large=large) == pytest.approx(
        [0.5, 5 / 6, 1.0, 0.0, 1.0]
    )
    assert make_labels(
        "small_fail_large_ok", WEAK, STRONG, small=small, large=large
    ) == pytest.approx([0.5, 5 / 9, 1.0, 0.0, 1.0])
    assert make_labels("weak_small_fail", WEAK, STRONG, small=small, large=large) == pytest.approx(
        [0.25, 11 / 12, 1.0, 0.0, 1.0]
    )
    assert make_labels("small_fail", WEAK, STRONG).tolist() == [0, 1, 1, 0, 1]
    with pytest.raises(RouterError, match="unknown label 'best'"):
        make_labels("best", WEAK, STRONG)
    with pytest.raises(RouterError, match="threshold"):
        make_labels("weak_wrong", WEAK, STRONG, 0.0)
