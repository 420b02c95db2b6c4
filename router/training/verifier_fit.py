"""Training the verifier: answer features, targets balanced per model, logistic regression.

The target is p_escalate = 1 - outcome (soft for graded outcomes, such as AlpacaEval's judge
preference). Rows are *balanced within each model* (and source): the escalate and keep mass of
every (source, model) group are made equal, so that recognising which model wrote an answer (which
an answer embedding can do, and which on AlpacaEval predicts most of the outcome) earns the fit
nothing; only what distinguishes a model's good answers from its bad ones does. A group with no
good or no bad answers cannot teach that and gets no weight. C is chosen by cross-validation
grouped by request, scored by held-out APGR.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from router.artifact import Artifact
from router.encoder import Encoder
from router.errors import RouterError
from router.training.embeddings import embed_cached
from router.training.fit import LinearFit, fit_linear
from router.training.metrics import routing_metrics
from router.training.verifier_data import AnswerExample
from router.verifier_features import featurize_answers

DEFAULT_VERIFIER_FEATURES = (
    "answer_prose",
    "answer_math",
    "answer_shape",
    "answer_tone",
    "worked_shape",
)
PROMPT_ONLY_FEATURES = ("request",)
VERIFIER_MAX_LENGTH = 256
VERIFIER_LABEL = "answer_unacceptable"
_MIN_CLASS_MASS = 1.0
MIN_GAP = 0.05


@dataclass(frozen=True)
class VerifierConfig:
    """What a verifier training run does; the defaults are the shipped verifier's settings.

    ``balance``: equal escalate/keep mass within each (source, model) group (module docstring).
    ``source_weight_power``: each source's total weight scales as ``n_source ** (1 - power)``
    (0 = as many rows as it has, 1 = every source equal). ``strong_answers``: also train on rows
    without a strong outcome (GSM8K's strong-model answers); they are never scored.
    ``max_length``: word pieces of each text the encoder reads (answers need more than prompts).
    """

    features: tuple[str, ...] = DEFAULT_VERIFIER_FEATURES
    C: float | None = None
    cs: tuple[float, ...] = (0.01, 0.1, 1.0)
    folds: int = 3
    balance: bool = True
    source_weight_power: float = 1.0
    strong_answers: bool = False
    max_length: int | None = VERIFIER_MAX_LENGTH


def answer_matrix(
    examples: Sequence[AnswerExample],
    features: Sequence[str],
    encoder: Encoder,
    max_length: int | None = VERIFIER_MAX_LENGTH,
    progress: bool = False,
) -> np.ndarray:
    """Features of ``examples``, embeddings through the on-disk cache."""

    def encode(texts: Sequence[str]) -> np.ndarray:
        return embed_cached(encoder, texts, max_length=max_length, progress=progress)

    return featurize_answers(
        [e.conversation for e in examples], [e.answer for e in examples], features, encode
    )


def scored_rows(examples: Sequence[AnswerExample]) -> np.ndarray:
    """Mask of the rows APGR is measured on: those with a strong outcome."""
    return np.array([e.strong is not None for e in examples], dtype=bool)


def outcome_arrays(examples: Sequence[AnswerExample]) -> tuple[np.ndarray, np.ndarray]:
    """(weak, strong) outcomes for APGR; without a strong outcome, 1 is assumed (a perfect tier)."""
    weak = np.array([e.outcome for e in examples], dtype=np.float64)
    strong = np.array([1.0 if e.strong is None else e.strong for e in examples], dtype=np.float64)
    return weak, strong


def training_rows(examples: Sequence[AnswerExample], config: VerifierConfig) -> np.ndarray:
    """Mask of the rows a fit may use under ``config``."""
    if config.strong_answers:
        return np.ones(len(examples), dtype=bool)
    return scored_rows(examples) | ~np.isin(
        [e.source for e in examples], [e.source for e in examples if e.strong is not None]
    )


def expand(
    x: np.ndarray, examples: Sequence[AnswerExample], config: VerifierConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, weight) for a 0/1 fit: each row as an escalate part (weight 1 - outcome) and a keep
    part (weight outcome), balanced within each (source, model) group, zero-weight parts dropped."""
    escalate = np.array([1.0 - e.outcome for e in examples], dtype=np.float64)
    keys = [(e.source, e.model) for e in examples]
    sources = Counter(e.source for e in examples)
    up, down = np.ones(len(examples)), np.ones(len(examples))
    for key in set(keys):
        rows = np.array([k == key for k in keys])
        n = float(rows.sum())
        share = sources[key[0]] ** -config.source_weight_power
        if config.balance:
            pos, neg = escalate[rows].sum(), (1.0 - escalate[rows]).sum()
            if pos < _MIN_CLASS_MASS or neg < _MIN_CLASS_MASS:
                up[rows] = down[rows] = 0.0
                continue
            up[rows], down[rows] = share * n / (2 * pos), share * n / (2 * neg)
        else:
            up[rows] = down[rows] = share
    xs = np.vstack([x, x])
    ys = np.concatenate([np.ones(len(examples), np.int64), np.zeros(len(examples), np.int64)])
    ws = np.concatenate([escalate * up, (1.0 - escalate) * down])
    keep = ws > 0
    if not keep.any() or len(np.unique(ys[keep])) < 2:
        raise RouterError(
            "no group of answers has both acceptable and unacceptable outcomes; "
            "the data cannot teach a verifier"
        )
    ws = ws[keep] * (keep.sum() / ws[keep].sum())
    return xs[keep], ys[keep], ws


def fit_verifier_arrays(
    x: np.ndarray, examples: Sequence[AnswerExample], config: VerifierConfig, C: float
) -> LinearFit:
    """One fit at strength C on the rows ``config`` allows."""
    rows = np.flatnonzero(training_rows(examples, config))
    xs, ys, ws = expand(x[rows], [examples[int(i)] for i in rows], config)
    return fit_linear(xs, ys, ws, C)


def choose_c(
    x: np.ndarray, examples: Sequence[AnswerExample], config: VerifierConfig
) -> tuple[float, dict[str, float]]:
    """The C with the best mean held-out APGR over request-grouped folds (per source, averaged)."""
    from sklearn.model_selection import GroupKFold

    if config.C is not None:
        return config.C, {}
    groups = np.array([e.group for e in examples])
    folds = min(config.folds, len(set(groups.tolist())))
    if folds < 2:
        return config.cs[-1], {}
    splits = list(GroupKFold(n_splits=folds).split(x, None, groups))
    results: dict[str, float] = {}
    for c in config.cs:
        held = np.full(len(examples), np.nan)
        for train, test in splits:
            fit = fit_verifier_arrays(x[train], [examples[int(i)] for i in train], config, c)
            held[test] = fit.predict(x[test])
        results[f"{c:g}"] = mean_source_apgr(examples, held)
    finite = {k: v for k, v in results.items() if np.isfinite(v)}
    best = max(finite, key=lambda k: finite[k]) if finite else f"{config.cs[-1]:g}"
    return float(best), results


def mean_source_apgr(examples: Sequence[AnswerExample], scores: np.ndarray) -> float:
    """Mean over sources of the held-out APGR on the scored rows, each source's figure the mean
    over its models (every model's answers as their own traffic). Models whose strong-weak gap is
    under MIN_GAP are skipped: there APGR divides by almost nothing and is mostly noise."""
    weak, strong = outcome_arrays(examples)
    scored = scored_rows(examples)
    if not scored.any():
        scored = np.ones(len(examples), dtype=bool)
    sources = np.array([e.source for e in examples])
    models = np.array([e.model for e in examples])
    per_source = []
    for source in sorted(set(sources[scored].tolist())):
        values = []
        for model in sorted(set(models[scored & (sources == source)].tolist())):
            rows = scored & (sources == source) & (models == model) & np.isfinite(scores)
            if rows.sum() > 1 and strong[rows].mean() - weak[rows].mean() >= MIN_GAP:
                apgr = routing_metrics(scores[rows], weak[rows], strong[rows]).apgr
                if np.isfinite(apgr):
                    values.append(apgr)
        if values:
            per_source.append(float(np.mean(values)))
    return float(np.mean(per_source)) if per_source else float("nan")


def train_verifier(
    examples: Sequence[AnswerExample],
    encoder: Encoder,
    config: VerifierConfig = VerifierConfig(),
    name: str = "tiergate-verifier",
    progress: bool = False,
) -> Artifact:
    """Train a verifier artifact on ``examples``, calibrated on the scored rows' mix."""
    if not examples:
        raise RouterError("no training examples")
    x = answer_matrix(examples, config.features, encoder, config.max_length, progress)
    c, cv = choose_c(x, examples, config)
    fit = fit_verifier_arrays(x, examples, config, c)
    used = [e for e, r in zip(examples, training_rows(examples, config), strict=True) if r]
    summary: dict[str, Any] = {
        "examples": len(used),
        "sources": dict(sorted(Counter(e.source for e in used).items())),
        "models": len({e.model for e in used}),
        "C": c,
        "cv_apgr_by_C": cv,
        "balance": "within (source, model)" if config.balance else "none",
        "source_weight_power": config.source_weight_power,
        "strong_answers": config.strong_answers,
    }
    artifact = fit.artifact(
        name=name,
        encoder_name=encoder.name,
        encoder_dimension=encoder.dimension,
        features=config.features,
        label=VERIFIER_LABEL,
        training=summary,
        encoder_max_length=config.max_length,
    )
    scored = scored_rows(examples)
    if not scored.any():
        scored = training_rows(examples, config)
    sources = [e.source for e, s in zip(examples, scored, strict=True) if s]
    counts = Counter(sources)
    artifact.calibrate(
        fit.predict(x[scored]),
        "the scored training answers, every source weighted equally",
        np.array([1.0 / counts[s] for s in sources]),
    )
    return artifact
