"""Training labels: which examples the router should learn to send to the strong model.

Outcomes are in [0, 1]; graded ones (MT-Bench's judge score, rescaled) are cut at ``threshold``,
the judge-score threshold (0.5 is a judge score of 5.5; 7/9 is a score of 8). For right/wrong
outcomes any threshold in (0, 1] gives the same label.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from router.errors import RouterError

LabelFn = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def weak_wrong(weak: np.ndarray, strong: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """1 where the weak model fails, whatever the strong one does (the issue's naive label)."""
    del strong
    return (np.asarray(weak, dtype=np.float64) < threshold).astype(np.int64)


def strong_only(weak: np.ndarray, strong: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """1 where only the strong model succeeds: the prompts on which a strong call buys quality."""
    weak_ok = np.asarray(weak, dtype=np.float64) >= threshold
    strong_ok = np.asarray(strong, dtype=np.float64) >= threshold
    return (strong_ok & ~weak_ok).astype(np.int64)


LABELS: dict[str, LabelFn] = {"weak_wrong": weak_wrong, "strong_only": strong_only}


def make_labels(
    name: str, weak: np.ndarray, strong: np.ndarray, threshold: float = 0.5
) -> np.ndarray:
    """Labels by name (``weak_wrong`` or ``strong_only``); RouterError for another name."""
    try:
        fn = LABELS[name]
    except KeyError:
        raise RouterError(f"unknown label {name!r}; expected one of {', '.join(LABELS)}") from None
    if not 0.0 < threshold <= 1.0:
        raise RouterError(f"label threshold {threshold!r}; expected a number in (0, 1]")
    return fn(weak, strong, threshold)
