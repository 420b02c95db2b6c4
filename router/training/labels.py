"""Training labels: which examples the router should learn to send to the strong model.

Outcomes are in [0, 1]; graded ones (MT-Bench's judge score, rescaled) are cut at ``threshold``,
the judge-score threshold (0.5 is a judge score of 5.5; 7/9 is a score of 8). For right/wrong
outcomes any threshold in (0, 1] gives the same label.

One model's single outcome is a noisy label: whether Mistral-7B happens to get a question right says
little about the question. The panel labels are denoised soft targets in [0, 1] read from a panel
of models (LLMRouter scores six small and three large ones per prompt), fit by sample-weighted
logistic regression (training.fit_linear). Where no panel is scored (RouteLLM), the pair's
thresholded outcomes stand in for the panel means, so a panel label falls back to its pair form.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from router.errors import RouterError

LabelFn = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
# (weak_ok, small_ok, large_ok): the weak model's 0/1 success, the panels' mean successes.
PanelFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def weak_wrong(weak: np.ndarray, strong: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """1 where the weak model fails, whatever the strong one does (the issue's naive label)."""
    del strong
    return (np.asarray(weak, dtype=np.float64) < threshold).astype(np.int64)


def strong_only(weak: np.ndarray, strong: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """1 where only the strong model succeeds: the prompts on which a strong call buys quality."""
    weak_ok = np.asarray(weak, dtype=np.float64) >= threshold
    strong_ok = np.asarray(strong, dtype=np.float64) >= threshold
    return (strong_ok & ~weak_ok).astype(np.int64)


def small_fail(weak_ok: np.ndarray, small_ok: np.ndarray, large_ok: np.ndarray) -> np.ndarray:
    """The fraction of small models that fail: how hard the prompt is for any small model."""
    del weak_ok, large_ok
    return 1.0 - small_ok


def weak_small_fail(weak_ok: np.ndarray, small_ok: np.ndarray, large_ok: np.ndarray) -> np.ndarray:
    """Half the weak model's failure, half the small panel's: denoised, near the weak base rate."""
    del large_ok
    mixed: np.ndarray = 1.0 - 0.5 * (weak_ok + small_ok)
    return mixed


def small_fail_large_ok(
    weak_ok: np.ndarray, small_ok: np.ndarray, large_ok: np.ndarray
) -> np.ndarray:
    """A small model fails and a large one succeeds (panel means): what a strong call buys."""
    del weak_ok
    both: np.ndarray = (1.0 - small_ok) * large_ok
    return both


LABELS: dict[str, LabelFn] = {"weak_wrong": weak_wrong, "strong_only": strong_only}
PANEL_LABELS: dict[str, PanelFn] = {
    "small_fail": small_fail,
    "small_fail_large_ok": small_fail_large_ok,
    "weak_small_fail": weak_small_fail,
}
# Sorted, so that --help lists them in the same order on every run.
LABEL_NAMES: tuple[str, ...] = tuple(sorted([*LABELS, *PANEL_LABELS]))


def make_labels(
    name: str,
    weak: np.ndarray,
    strong: np.ndarray,
    threshold: float = 0.5,
    small: np.ndarray | None = None,
    large: np.ndarray | None = None,
) -> np.ndarray:
    """Labels by name (one of LABEL_NAMES); ``small``/``large``: panel means, NaN where unknown.

    Pair labels are 0/1 integers, panel labels floats in [0, 1]. RouterError for another name.
    """
    if name not in LABEL_NAMES:
        raise RouterError(f"unknown label {name!r}; expected one of {', '.join(LABEL_NAMES)}")
    if not 0.0 < threshold <= 1.0:
        raise RouterError(f"label threshold {threshold!r}; expected a number in (0, 1]")
    if name in LABELS:
        return LABELS[name](weak, strong, threshold)
    weak_ok = (np.asarray(weak, dtype=np.float64) >= threshold).astype(np.float64)
    strong_ok = (np.asarray(strong, dtype=np.float64) >= threshold).astype(np.float64)
    small_ok = weak_ok if small is None else np.where(np.isnan(small), weak_ok, small)
    large_ok = strong_ok if large is None else np.where(np.isnan(large), strong_ok, large)
    return np.asarray(
        np.clip(PANEL_LABELS[name](weak_ok, small_ok, large_ok), 0.0, 1.0), dtype=np.float64
    )
