"""How the route classifier is fitted: which background texts stand for "none of these", the
multinomial logistic regression, and the temperature that makes its probabilities honest.

Three choices, each measured on held-back paraphrases (tests/router/routes_data/, the report of
research/routes):

- The background set is generic traffic, so some of it is exactly what a route describes (the
  background's own code requests, when an operator declares a ``code`` route). Left in "none", they
  pull each such route's probability down. A background text is dropped when at least half of its
  ``ENN_K`` nearest neighbours among route texts and background texts are route texts (Wilson's
  edited nearest neighbours); a whole background kind is dropped when most of its texts are, or when
  its centroid is within cosine ``KIND_CENTROID`` of a route's.
- Every class weighs the same in the fit (the background outnumbers each route ten to one).
- With five to forty examples per route the regularised fit is under-confident: right on 92-96% of
  paraphrases by argmax but above 0.6 on far fewer. One temperature, chosen to minimise the
  log-loss of 5-fold out-of-fold logits, sharpens the probabilities without changing the argmax.

Pure numpy and scikit-learn: no encoder, no files. The fits run with one BLAS thread: on a busy
2-core machine OpenBLAS's threads made each fit 2-3 s instead of 30 ms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

C = 3.0
FOLDS = 5
ENN_K = 5
ENN_SHARE = 0.5
KIND_SHARE = 0.5
KIND_CENTROID = 0.6
MIN_BACKGROUND = 20
_TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(5.0), 161))


@dataclass
class Fit:
    """Weights over the routes' classes then "none", and the temperature dividing the logits."""

    coef: np.ndarray
    intercept: np.ndarray
    temperature: float
    summary: dict[str, Any] = field(default_factory=dict)


def background_mask(
    route_vectors: Sequence[np.ndarray], background: np.ndarray, kinds: Sequence[str]
) -> np.ndarray:
    """Which background rows stay in the "none" class (see the module docstring)."""
    routes = np.vstack(route_vectors)
    reference = np.vstack([routes, background])
    sims = background @ reference.T
    n_routes = len(routes)
    sims[np.arange(len(background)), n_routes + np.arange(len(background))] = -np.inf
    k = min(ENN_K, reference.shape[0] - 1)
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    keep = (nearest < n_routes).mean(axis=1) < ENN_SHARE
    centroids = _unit(np.stack([v.mean(axis=0) for v in route_vectors]))
    kind_array = np.asarray(kinds)
    for kind in dict.fromkeys(kinds):
        rows = kind_array == kind
        centroid = _unit(background[rows].mean(axis=0, keepdims=True))
        mostly_dropped = 1.0 - keep[rows].mean() >= KIND_SHARE
        if mostly_dropped or float((centroid @ centroids.T).max()) >= KIND_CENTROID:
            keep[rows] = False
    if keep.sum() < MIN_BACKGROUND:  # routes cover nearly everything: keep the least similar
        farthest = np.argsort((background @ routes.T).max(axis=1))[:MIN_BACKGROUND]
        keep[farthest] = True
    return np.asarray(keep)


def fit(route_vectors: Sequence[np.ndarray], background: np.ndarray, kinds: Sequence[str]) -> Fit:
    """Fit the classifier on each route's text vectors (one matrix per route, in class order) and
    the background vectors; the last class is "none"."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(1):
        return _fit(route_vectors, background, kinds)


def _fit(route_vectors: Sequence[np.ndarray], background: np.ndarray, kinds: Sequence[str]) -> Fit:
    from sklearn.linear_model import LogisticRegression

    keep = background_mask(route_vectors, background, kinds)
    n_routes = len(route_vectors)
    x = np.vstack([*route_vectors, background[keep]]).astype(np.float64)
    y = np.concatenate(
        [np.full(len(v), i) for i, v in enumerate(route_vectors)]
        + [np.full(int(keep.sum()), n_routes)]
    )
    model = LogisticRegression(C=C, max_iter=5000).fit(x, y, sample_weight=_balanced(y))
    coef, intercept = _multiclass(model.coef_, model.intercept_)
    temperature, folds = _temperature(x, y)
    dropped = Counter(k for k, kept in zip(kinds, keep, strict=True) if not kept)
    summary = {
        "C": C,
        "temperature": temperature,
        "folds": folds,
        "texts_per_route": [len(v) for v in route_vectors],
        "background": {
            "kept": int(keep.sum()),
            "total": len(keep),
            "left_out": dict(sorted(dropped.items())),
        },
    }
    return Fit(coef, intercept, temperature, summary)


def _temperature(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """The temperature minimising the class-balanced log-loss of out-of-fold logits."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    folds = min(FOLDS, int(np.bincount(y).min()))
    if folds < 2:
        return 1.0, 0
    logits = np.zeros((len(y), int(y.max()) + 1))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=0)
    for train, test in splitter.split(x, y):
        model = LogisticRegression(C=C, max_iter=5000)
        model.fit(x[train], y[train], sample_weight=_balanced(y[train]))
        coef, intercept = _multiclass(model.coef_, model.intercept_)
        logits[test] = x[test] @ coef.T + intercept
    weights = _balanced(y)
    losses = [
        -(weights * log_softmax(logits / t)[np.arange(len(y)), y]).sum() for t in _TEMPERATURES
    ]
    return float(_TEMPERATURES[int(np.argmin(losses))]), folds


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, stable for large logits."""
    shifted = z - z.max(axis=1, keepdims=True)
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))


def _multiclass(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row per class: scikit-learn gives a single row for two classes (route vs none)."""
    if coef.shape[0] == 1:
        return np.vstack([np.zeros_like(coef[0]), coef[0]]), np.array([0.0, intercept[0]])
    return np.asarray(coef), np.asarray(intercept)


def _balanced(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y).astype(np.float64)
    return np.asarray(len(y) / (len(counts) * counts[y]))


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
