"""Retraining on the gateway's own traffic: rows from stored outcomes, a held-out comparison.

The gateway stores, for shadow-judged requests and requests with feedback, the verdict on the
cheaper tier's answer (1: as good as the most capable tier's) beside the routed text's MiniLM
embedding and the answer's verifier features (`gateway.chat.outcomes`). Those are rows:

- for the router: x = the embedding (the `last_user` feature, as the router reads it), weak = the
  verdict, strong = 1 (the capable tier is the reference): the label is 1 - verdict, the need for
  the capable tier;
- for the verifier: x = the stored verifier features of the cheaper answer, the target
  p_escalate = 1 - verdict.

Only rows about a cheaper tier's answer count (a verdict on the capable tier's own answer says
nothing of the cheaper one), and only vectors made the way the model reads them (same encoder, same
word pieces; `router.vectors.embedding_id`). A share of the rows (`holdout`, by request) is held
out: the new model is fitted on the rest and compared with the running artifact on it (AUC of the
quality curve, APGR, as the router's evaluation computes them); the artifact written is then refit
on every row, and carries the comparison in its training summary. With shared data (`--data`),
its rows join the fit and the log's rows carry `log_weight` of the total weight.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from router.artifact import Artifact
from router.errors import RouterError
from router.logged import LoggedOutcome
from router.training.fit import LinearFit, fit_linear
from router.training.metrics import routing_metrics
from router.vectors import embedding_id

ROUTER_FEATURES = ("last_user",)
LOG_SOURCE = "tiergate-log"
MIN_ROWS = 8


@dataclass
class Rows:
    """Training rows: features, the cheaper answer's outcome, and where each row came from."""

    x: np.ndarray
    weak: np.ndarray
    groups: list[str]
    sources: list[str]
    categories: list[str | None] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.weak)


def canonical(outcomes: Sequence[LoggedOutcome]) -> list[LoggedOutcome]:
    """`outcomes` in an order set by their content, not by when their verdicts arrived (shadow
    verdicts land in whatever order the judge answers): the same stored outcomes then always
    give the same folds, the same C and the same model."""

    def key(row: LoggedOutcome) -> tuple[str, str, float]:
        vector = b"" if row.embedding is None else np.asarray(row.embedding).tobytes()
        features = json.dumps(row.features, sort_keys=True, default=str)
        digest = hashlib.sha256(vector + features.encode()).hexdigest()
        return digest, row.kind, -1.0 if row.verdict is None else row.verdict

    return sorted(outcomes, key=key)


def router_rows(outcomes: Sequence[LoggedOutcome], encoder: str, max_length: int | None) -> Rows:
    """The router's rows: verdicts on a cheaper answer with an embedding made as the router makes
    it (`embedding_id(encoder, max_length)`); `skipped` counts the others, by reason."""
    wanted = embedding_id(encoder, max_length)
    vectors, weak, groups, categories = [], [], [], []
    skipped: Counter[str] = Counter()
    for row in canonical(outcomes):
        if row.verdict is None or row.weak_tier is None:
            skipped["no verdict on a cheaper answer"] += 1
        elif row.embedding is None:
            skipped["no embedding"] += 1
        elif row.embedding_model != wanted:
            skipped[f"embedding of {row.embedding_model}, not {wanted}"] += 1
        else:
            vectors.append(row.embedding)
            weak.append(float(row.verdict))
            groups.append(row.request_id)
            categories.append(row.category)
    return _rows(vectors, weak, groups, categories, skipped)


def verifier_rows(outcomes: Sequence[LoggedOutcome], features: Sequence[str]) -> Rows:
    """The verifier's rows: verdicts on a cheaper answer with stored verifier features of the
    same feature set."""
    vectors, weak, groups, categories = [], [], [], []
    skipped: Counter[str] = Counter()
    for row in canonical(outcomes):
        stored = (row.features or {}).get("verifier")
        if row.verdict is None or row.weak_tier is None:
            skipped["no verdict on a cheaper answer"] += 1
        elif not isinstance(stored, dict):
            skipped["no verifier features"] += 1
        elif list(stored.get("features") or ()) != list(features):
            skipped["another verifier feature set"] += 1
        else:
            vectors.append(np.asarray(stored["values"], dtype=np.float64))
            weak.append(float(row.verdict))
            groups.append(row.request_id)
            categories.append(row.category)
    return _rows(vectors, weak, groups, categories, skipped)


def _rows(
    vectors: list[np.ndarray],
    weak: list[float],
    groups: list[str],
    categories: list[str | None],
    skipped: Counter[str],
) -> Rows:
    # In a fixed order whatever order the rows were stored in (shadow jobs finish in any order):
    # the same log gives the same artifact.
    order = sorted(range(len(vectors)), key=lambda i: hashlib.sha256(vectors[i].tobytes()).digest())
    x = np.vstack([vectors[i] for i in order]) if vectors else np.zeros((0, 0))
    return Rows(
        x,
        np.asarray([weak[i] for i in order]),
        [groups[i] for i in order],
        [LOG_SOURCE] * len(order),
        [categories[i] for i in order],
        dict(skipped),
    )


@dataclass(frozen=True)
class LogFit:
    """How the model is fitted on log rows. `C` None: chosen among `cs` by cross-validated
    log loss on the log's rows (a model whose scores meet a policy's fixed threshold must be
    calibrated, not only rank well)."""

    C: float | None = None
    cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    folds: int = 3
    holdout: float = 0.2
    seed: int = 0
    log_weight: float = 0.5
    """With shared rows: the log's share of the total weight."""
    class_balanced: bool = True


def split(rows: Rows, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) row indices, by request, `holdout` of them held out (none if too few)."""
    n = len(rows)
    order = np.random.default_rng(seed).permutation(n)
    held = round(n * holdout) if n >= 2 * MIN_ROWS else 0
    return np.sort(order[held:]), np.sort(order[:held])


def fit_rows(
    rows: Rows, index: np.ndarray, config: LogFit, shared: Rows | None = None
) -> LinearFit:
    """A logistic regression on `rows[index]` (target 1 - verdict, soft), with `shared` rows."""
    x, y, weights = _arrays(rows, index, config, shared)
    c, cv = (config.C, {}) if config.C is not None else choose_c(x, y, weights, config)
    fit = fit_linear(x, y, weights, c, class_balanced=config.class_balanced)
    fit.cv = cv
    return fit


def _arrays(
    rows: Rows, index: np.ndarray, config: LogFit, shared: Rows | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, target, weight) of `rows[index]` and the shared rows."""
    x, weak = rows.x[index], rows.weak[index]
    weights = np.ones(len(weak))
    if shared is not None and len(shared):
        total = len(weak) + len(shared)
        weights = np.concatenate(
            [
                weights * config.log_weight * total / max(len(weak), 1),
                np.ones(len(shared)) * (1 - config.log_weight) * total / len(shared),
            ]
        )
        x, weak = np.vstack([x, shared.x]), np.concatenate([weak, shared.weak])
    y = 1.0 - weak
    if len(np.unique(np.round(y))) < 2:
        raise RouterError(
            f"all {len(y)} rows have the same verdict; the log cannot teach a model yet "
            "(shadow more traffic, or add --data)"
        )
    return x, y, weights


def choose_c(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, config: LogFit
) -> tuple[float, dict[str, float]]:
    """The C with the lowest mean held-out log loss over stratified folds (the middle of `cs`
    when a class has too few rows to fold)."""
    from sklearn.model_selection import StratifiedKFold

    hard = np.round(y).astype(np.int64)
    folds = min(config.folds, int(np.bincount(hard, minlength=2).min()))
    if folds < 2:
        return config.cs[len(config.cs) // 2], {}
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=config.seed).split(x, hard))
    losses: dict[str, float] = {}
    for c in config.cs:
        total = 0.0
        for train, test in splits:
            fit = fit_linear(
                x[train], y[train], weights[train], c, class_balanced=config.class_balanced
            )
            p = np.clip(fit.predict(x[test]), 1e-6, 1 - 1e-6)
            loss = -(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p))
            total += float(np.average(loss, weights=weights[test]))
        losses[f"{c:g}"] = total / len(splits)
    best = min(losses, key=lambda k: losses[k])
    return float(best), losses


def compare(
    rows: Rows, held: np.ndarray, fit: LinearFit, running: Artifact | None
) -> dict[str, Any]:
    """Held-out figures of the new fit and of the running artifact on the same rows."""
    if len(held) == 0:
        return {"held_out": 0, "note": f"fewer than {2 * MIN_ROWS} rows: nothing held out"}
    x, weak = rows.x[held], rows.weak[held]
    report: dict[str, Any] = {"held_out": len(held), "new": _figures(fit.predict(x), weak)}
    if running is not None:
        try:
            report["running"] = _figures(running.predict(x), weak)
        except RouterError as exc:
            report["running"] = {"error": str(exc)}
    report["weak_accuracy"] = float(weak.mean())
    return report


def _figures(scores: np.ndarray, weak: np.ndarray) -> dict[str, Any]:
    metrics = routing_metrics(scores, weak, np.ones_like(weak))
    return {"auc": metrics.auc, "apgr": metrics.as_dict()["apgr"]}


def artifact_from(
    fit: LinearFit,
    *,
    name: str,
    encoder: str,
    dimension: int,
    features: Sequence[str],
    label: str,
    max_length: int | None,
    calibrate_on: np.ndarray,
    summary: dict[str, Any],
) -> Artifact:
    """An artifact of `fit`, calibrated on the scores of `calibrate_on` (the log's traffic)."""
    artifact = fit.artifact(
        name=name,
        encoder_name=encoder,
        encoder_dimension=dimension,
        features=features,
        label=label,
        training={"C": fit.C, **summary},
        encoder_max_length=max_length,
    )
    artifact.calibrate(fit.predict(calibrate_on), "the gateway's logged traffic")
    return artifact


def train_from_log(
    rows: Rows,
    config: LogFit,
    *,
    running: Artifact | None,
    shared: Rows | None,
    describe: dict[str, Any],
) -> tuple[LinearFit, dict[str, Any]]:
    """Held-out comparison on a split, then the fit on every row: (final fit, summary)."""
    if len(rows) < MIN_ROWS:
        raise RouterError(
            f"{len(rows)} usable rows in the log (at least {MIN_ROWS} are needed); skipped: "
            f"{rows.skipped or 'none'}"
        )
    train, held = split(rows, config.holdout, config.seed)
    evaluation = compare(rows, held, fit_rows(rows, train, config, shared), running)
    final = fit_rows(rows, np.arange(len(rows)), config, shared)
    summary_cv = {"cv_log_loss_by_C": final.cv} if final.cv else {}
    per_category = Counter(c or "none" for c in rows.categories)
    summary = {
        **describe,
        "from_log": {
            "rows": len(rows),
            "skipped": rows.skipped,
            "categories": dict(sorted(per_category.items())),
            "mean_verdict": float(rows.weak.mean()),
            "shared_rows": 0 if shared is None else len(shared),
            "log_weight": config.log_weight if shared is not None else 1.0,
            "holdout": config.holdout,
            "evaluation": evaluation,
            **summary_cv,
        },
    }
    return final, summary
