"""The verifier's evaluation protocol: held-out APGR of escalating by p_escalate, beside prompt-only
routing trained on the same rows with the same folds.

APGR here (router/metrics.py): the weak answer's outcome against the strong model's outcome on the
same request, requests sorted by score. Three splits:

- ``request_folds``: k-fold cross-validation grouped by request (no request's answers on both
  sides), over every source; GSM8K's figure is the issue's "5-fold by prompt".
- ``leave_one_source_out``: each source with a prefix (AlpacaEval's instruction sets) held out,
  trained on everything else.
- ``model_and_source_out``: held out by model *and* instruction set: the answers of a fold of
  models on one set, trained on the other models' answers to the other sets, so neither the
  writer nor the request was seen.

On AlpacaEval each weak model's answers are scored as their own traffic (``per_model``) and then
averaged: pooling models would reward telling models apart, which says nothing about a gateway's
one cheaper tier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from router.training.metrics import RoutingMetrics, oracle_scores, routing_metrics
from router.training.verifier_data import AnswerExample
from router.training.verifier_fit import (
    MIN_GAP,
    VerifierConfig,
    fit_verifier_arrays,
    outcome_arrays,
    scored_rows,
)


@dataclass(frozen=True)
class Split:
    """One fold: boolean masks of the training rows and of the held-out rows."""

    name: str
    train: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Comparison:
    """One row of a results table: the verifier and prompt-only routing on the same rows."""

    name: str
    n: int
    weak: float
    strong: float
    verifier: float
    prompt_only: float
    oracle: float
    models: int = 1

    @property
    def gain(self) -> float:
        return self.verifier - self.prompt_only

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN becomes None)."""
        out: dict[str, Any] = {}
        for key in ("name", "n", "models", "weak", "strong", "verifier", "prompt_only", "oracle"):
            value = getattr(self, key)
            out[key] = None if isinstance(value, float) and not np.isfinite(value) else value
        return out


def _column(examples: Sequence[AnswerExample], field: str) -> np.ndarray:
    return np.array([getattr(e, field) for e in examples])


def request_folds(examples: Sequence[AnswerExample], folds: int = 5) -> list[Split]:
    """k folds grouped by request over all rows (sklearn's GroupKFold: deterministic)."""
    from sklearn.model_selection import GroupKFold

    groups = _column(examples, "group")
    out = []
    for index, (train, test) in enumerate(GroupKFold(n_splits=folds).split(groups, None, groups)):
        train_mask = np.zeros(len(examples), bool)
        test_mask = np.zeros(len(examples), bool)
        train_mask[train], test_mask[test] = True, True
        out.append(Split(f"fold {index + 1}", train_mask, test_mask))
    return out


def leave_one_source_out(examples: Sequence[AnswerExample], prefix: str) -> list[Split]:
    """Each source starting with ``prefix`` held out in turn; trained on every other row."""
    sources = _column(examples, "source")
    return [
        Split(source, sources != source, sources == source)
        for source in sorted({s for s in sources.tolist() if s.startswith(prefix)})
    ]


def model_and_source_out(
    examples: Sequence[AnswerExample], prefix: str, model_folds: int = 5
) -> list[Split]:
    """Held out by instruction set and by a fold of models (models dealt round-robin by name)."""
    sources = _column(examples, "source")
    models = _column(examples, "model")
    mine = np.char.startswith(sources.astype(str), prefix)
    names = sorted(set(models[mine].tolist()))
    fold_of = {name: i % model_folds for i, name in enumerate(names)}
    fold = np.array([fold_of.get(m, -1) for m in models.tolist()])
    out = []
    for source in sorted(set(sources[mine].tolist())):
        for k in range(min(model_folds, len(names))):
            test = (sources == source) & (fold == k)
            train = (sources != source) & (fold != k)
            out.append(Split(f"{source} / model fold {k + 1}", train, test))
    return out


def held_out_scores(
    x: np.ndarray,
    examples: Sequence[AnswerExample],
    config: VerifierConfig,
    C: float,
    splits: Sequence[Split],
    on_split: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Each row's score from the fit that did not see it (NaN where no split tests it)."""
    scores = np.full(len(examples), np.nan)
    for split in splits:
        if on_split is not None:
            on_split(split.name)
        train = np.flatnonzero(split.train)
        fit = fit_verifier_arrays(x[train], [examples[int(i)] for i in train], config, C)
        scores[split.test] = fit.predict(x[split.test])
    return scores


def compare(
    name: str,
    examples: Sequence[AnswerExample],
    verifier: np.ndarray,
    prompt_only: np.ndarray,
    rows: np.ndarray,
) -> Comparison:
    """Both routers' APGR on ``rows`` (restricted to scored rows held out for both)."""
    weak, strong = outcome_arrays(examples)
    rows = rows & scored_rows(examples) & np.isfinite(verifier) & np.isfinite(prompt_only)
    if rows.sum() < 2:
        nan = float("nan")
        return Comparison(name, int(rows.sum()), nan, nan, nan, nan, nan)
    w, s = weak[rows], strong[rows]
    return Comparison(
        name=name,
        n=int(rows.sum()),
        weak=float(w.mean()),
        strong=float(s.mean()),
        verifier=_apgr(routing_metrics(verifier[rows], w, s)),
        prompt_only=_apgr(routing_metrics(prompt_only[rows], w, s)),
        oracle=_apgr(routing_metrics(oracle_scores(w, s), w, s)),
    )


def per_model(
    name: str,
    examples: Sequence[AnswerExample],
    verifier: np.ndarray,
    prompt_only: np.ndarray,
    rows: np.ndarray,
    min_gap: float = MIN_GAP,
) -> tuple[Comparison, list[Comparison]]:
    """Each model's answers on ``rows`` as their own traffic, and the mean over the models whose
    strong-weak quality gap is at least ``min_gap`` (below it APGR is mostly noise)."""
    models = _column(examples, "model")
    each = [
        compare(model, examples, verifier, prompt_only, rows & (models == model))
        for model in sorted(set(models[rows].tolist()))
    ]
    kept = [c for c in each if np.isfinite(c.verifier) and c.strong - c.weak >= min_gap]
    if not kept:
        nan = float("nan")
        return Comparison(name, 0, nan, nan, nan, nan, nan, 0), each
    mean = Comparison(
        name=name,
        n=sum(c.n for c in kept),
        weak=float(np.mean([c.weak for c in kept])),
        strong=float(np.mean([c.strong for c in kept])),
        verifier=float(np.mean([c.verifier for c in kept])),
        prompt_only=float(np.mean([c.prompt_only for c in kept])),
        oracle=float(np.mean([c.oracle for c in kept])),
        models=len(kept),
    )
    return mean, each


def _apgr(metrics: RoutingMetrics) -> float:
    return float(metrics.apgr)


def table(rows: Sequence[Comparison]) -> str:
    """Markdown: n, models, weak and strong quality, both APGRs, the gain and the oracle."""
    head = (
        "| rows | n | models | weak | strong | verifier APGR | prompt-only APGR | gain | oracle |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r.name, str(r.n), str(r.models)] + [
            "n/a" if not np.isfinite(v) else f"{v:+.3f}" if key == "gain" else f"{v:.3f}"
            for key, v in (
                ("weak", r.weak),
                ("strong", r.strong),
                ("verifier", r.verifier),
                ("prompt_only", r.prompt_only),
                ("gain", r.gain),
                ("oracle", r.oracle),
            )
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
