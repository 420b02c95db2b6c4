"""RouteLLM's routing metrics: the cost-quality curve, AUC, APGR and CPT, with random and oracle.

Prompts are sorted by score (higher = strong model); sending the top k of N to the strong model
gives quality acc(k) = (strong outcomes of the top k + weak outcomes of the rest) / N. Tied scores
are ordered at random, so the curve is taken at the boundaries of tie groups and linear between them
(the expected curve): a constant score is the random router, exactly 0.5 APGR.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RoutingMetrics:
    """The figures reported for one router on one traffic mix (fractions in [0, 1]).

    apgr and cpt are NaN when the strong model is not better than the weak one on this mix: there is
    no quality gap to recover.
    """

    n: int
    weak_accuracy: float
    strong_accuracy: float
    auc: float
    apgr: float
    cpt50: float
    cpt80: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN becomes None)."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def quality_curve(
    scores: np.ndarray, weak: np.ndarray, strong: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(strong-call fraction, quality) points of the piecewise-linear cost-quality curve."""
    scores = np.asarray(scores, dtype=np.float64)
    weak = np.asarray(weak, dtype=np.float64)
    strong = np.asarray(strong, dtype=np.float64)
    n = len(scores)
    if n == 0 or not (len(weak) == len(strong) == n):
        raise ValueError("scores, weak and strong must be non-empty and of equal length")
    order = np.argsort(-scores, kind="stable")
    gain = (strong - weak)[order]
    cumulative = np.concatenate([[0.0], np.cumsum(gain)])
    sorted_scores = scores[order]
    boundaries = np.flatnonzero(np.diff(sorted_scores) != 0) + 1
    ks = np.concatenate([[0], boundaries, [n]])
    fractions = ks / n
    quality = (weak.sum() + cumulative[ks]) / n
    return fractions, quality


def routing_metrics(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> RoutingMetrics:
    """AUC, APGR, CPT(50%) and CPT(80%) of a router's scores on one mix of prompts."""
    fractions, quality = quality_curve(scores, weak, strong)
    weak_acc = float(np.mean(weak))
    strong_acc = float(np.mean(strong))
    auc = float(np.trapezoid(quality, fractions))
    gap = strong_acc - weak_acc
    if gap <= 1e-12:
        nan = math.nan
        return RoutingMetrics(len(np.asarray(weak)), weak_acc, strong_acc, auc, nan, nan, nan)
    return RoutingMetrics(
        n=len(np.asarray(weak)),
        weak_accuracy=weak_acc,
        strong_accuracy=strong_acc,
        auc=auc,
        apgr=(auc - weak_acc) / gap,
        cpt50=cost_to_reach(fractions, quality, weak_acc + 0.5 * gap),
        cpt80=cost_to_reach(fractions, quality, weak_acc + 0.8 * gap),
    )


def cost_to_reach(fractions: np.ndarray, quality: np.ndarray, target: float) -> float:
    """The smallest strong-call fraction at which the curve reaches target."""
    if quality[0] >= target:
        return 0.0
    for i in range(1, len(quality)):
        if quality[i] >= target - 1e-12:
            q0, q1, f0, f1 = quality[i - 1], quality[i], fractions[i - 1], fractions[i]
            return float(f0 + (f1 - f0) * (target - q0) / (q1 - q0)) if q1 > q0 else float(f1)
    return math.nan


def oracle_scores(weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """The oracle's scores: prompts where only the strong model succeeds first, the reverse last."""
    return np.asarray(strong, dtype=np.float64) - np.asarray(weak, dtype=np.float64)


def random_metrics(weak: np.ndarray, strong: np.ndarray) -> RoutingMetrics:
    """The random router's expected figures (a constant score: the diagonal of the curve)."""
    return routing_metrics(np.zeros(len(np.asarray(weak))), weak, strong)
