"""Training: feature matrices, logistic regression with C chosen by grouped CV, and artifacts.

The regularisation strength is picked by cross-validation over *sources* (GroupKFold), scoring each
candidate by held-out APGR, because the router must rank prompts from traffic it was not trained on.
Examples can be weighted so that each source counts about equally whatever its size (MMLU alone is
two thirds of the shared data).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from router.artifact import Artifact
from router.encoder import Encoder
from router.errors import RouterError
from router.features import featurize
from router.training.data import Example
from router.training.embeddings import embed_cached
from router.training.labels import make_labels
from router.training.metrics import routing_metrics

DEFAULT_FEATURES = ("last_user",)
DEFAULT_CS = (0.001, 0.01, 0.1, 1.0)
DEFAULT_MAX_LENGTH = 128


@dataclass(frozen=True)
class TrainConfig:
    """What a training run does; the defaults are the shipped router's settings (see MODEL_CARD.md).

    ``source_weight_power``: each example weighs ``n_source ** -power`` (0 = plain, 1 = every source
    equal). ``C``: a fixed regularisation strength, skipping the cross-validation.
    ``source_effects``: fit one intercept per training source (dropped at inference), so the weights
    learn what makes a prompt harder *within* a source rather than which source it came from;
    ``pooled_mix`` then adds that much of a plain pooled fit back, for the between-source prior.
    ``class_balanced``: the label's positive and negative weight mass made equal (a soft label's
    row splits its weight), so the fit is not pulled towards the majority outcome.
    ``max_length``: word pieces of each text the encoder reads (None: the encoder's default, 256
    for MiniLM). MiniLM was trained on 128; reading 128 gave the same held-out APGR as 256 and
    halves the cost of long prompts (MODEL_CARD.md).
    """

    features: tuple[str, ...] = DEFAULT_FEATURES
    label: str = "weak_wrong"
    threshold: float = 0.5
    source_weight_power: float = 0.0
    cs: tuple[float, ...] = DEFAULT_CS
    C: float | None = None
    folds: int = 3
    source_effects: bool = False
    pooled_mix: float = 0.0
    class_balanced: bool = False
    max_length: int | None = DEFAULT_MAX_LENGTH
    # (source, multiplier) pairs: a source's rows weigh that much more (a name matches the source
    # and its sub-sources, "alpacaeval" also "alpacaeval/oasst"); see source_multipliers.
    source_multipliers: tuple[tuple[str, float], ...] = ()
    # (source, share) pairs: a source's rows carry that share of the total training weight,
    # whatever else is in the fold (applied after the multipliers; see source_shares).
    source_shares: tuple[tuple[str, float], ...] = ()
    # Sources whose prompts make the calibration mix, each weighing the same (empty: all sources).
    calibration_sources: tuple[str, ...] = ()


def in_sources(source: str, names: Sequence[str]) -> bool:
    """True if ``source`` is one of ``names`` or a sub-source of one ("alpacaeval/oasst")."""
    return any(source == n or source.startswith(n + "/") for n in names)


def source_multipliers(
    sources: Sequence[str], multipliers: Sequence[tuple[str, float]]
) -> np.ndarray:
    """Per-example weight multipliers: the product of every matching (source, multiplier) pair."""
    out = np.ones(len(sources), dtype=np.float64)
    for name, factor in multipliers:
        out[[in_sources(s, (name,)) for s in sources]] *= factor
    return out


def source_shares(
    weights: np.ndarray, sources: Sequence[str], shares: Sequence[tuple[str, float]]
) -> np.ndarray:
    """``weights`` rescaled so that each (source, share) pair's rows carry that share of the total
    (the rest keep their proportions; mean 1). Sources absent from ``sources`` are ignored."""
    out = np.asarray(weights, dtype=np.float64).copy()
    total = out.sum()
    fixed = np.zeros(len(out), dtype=bool)
    for name, share in shares:
        rows = np.array([in_sources(s, (name,)) for s in sources], dtype=bool)
        if rows.any():
            out[rows] *= share * total / out[rows].sum()
            fixed |= rows
    rest = 1.0 - sum(
        share for name, share in shares if any(in_sources(s, (name,)) for s in sources)
    )
    if (~fixed).any() and rest > 0:
        out[~fixed] *= rest * total / out[~fixed].sum()
    scaled: np.ndarray = out * (len(out) / out.sum())
    return scaled


@dataclass
class LinearFit:
    """A fitted standardiser and logistic regression, plus how C was chosen."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    C: float
    cv: dict[str, float] = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """p_strong for a feature matrix."""
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40, 40))), dtype=np.float64)

    def artifact(
        self,
        *,
        name: str,
        encoder_name: str,
        encoder_dimension: int,
        features: Sequence[str],
        label: str,
        training: dict[str, Any],
        encoder_max_length: int | None,
    ) -> Artifact:
        """This fit as an artifact, not yet calibrated (identity calibration: the caller
        calibrates it on the traffic its policies' fractions refer to)."""
        return Artifact(
            name=name,
            encoder_name=encoder_name,
            encoder_dimension=encoder_dimension,
            features=list(features),
            mean=self.mean,
            scale=self.scale,
            coef=self.coef,
            intercept=self.intercept,
            calibration_fractions=np.array([0.0, 1.0]),
            calibration_thresholds=np.array([1.0, 0.0]),
            label=label,
            training=training,
            encoder_max_length=encoder_max_length,
        )


def feature_matrix(
    examples: Sequence[Example],
    features: Sequence[str],
    encoder: Encoder,
    progress: bool = False,
    max_length: int | None = None,
) -> np.ndarray:
    """Features of ``examples``, embeddings through the on-disk cache."""

    def encode(texts: Sequence[str]) -> np.ndarray:
        return embed_cached(encoder, texts, max_length=max_length, progress=progress)

    return featurize([e.conversation for e in examples], features, encode)


def panel_arrays(examples: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
    """The examples' small- and large-panel mean outcomes, NaN where the data has no panel."""

    def column(values: list[float | None]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    return column([e.small for e in examples]), column([e.large for e in examples])


def source_weights(sources: Sequence[str], power: float) -> np.ndarray:
    """Per-example weights ``n_source ** -power``, rescaled to mean 1."""
    counts = Counter(sources)
    weights = np.array([counts[s] ** -power for s in sources], dtype=np.float64)
    scaled: np.ndarray = weights * (len(weights) / weights.sum())
    return scaled


def fit_linear(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    C: float,
    sources: Sequence[str] | None = None,
    pooled_mix: float = 0.0,
    class_balanced: bool = False,
) -> LinearFit:
    """Standardise, then fit an L2 logistic regression with strength C (sample-weighted).

    With ``sources``, each source gets its own intercept during fitting (see TrainConfig). A soft
    target (floats in [0, 1], the panel labels) is fit as each row twice: y=1 with weight w*p and
    y=0 with weight w*(1-p), which is the cross-entropy against p.
    """
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        raise RouterError("every training label is the same; the data cannot teach a router")
    if np.issubdtype(y.dtype, np.floating):
        x = np.vstack([x, x])
        weights = np.concatenate([weights * y, weights * (1.0 - y)])
        y = np.concatenate([np.ones(len(y), np.int64), np.zeros(len(y), np.int64)])
        sources = None if sources is None else [*sources, *sources]
    if class_balanced:
        mass = np.array([weights[y == 0].sum(), weights[y == 1].sum()])
        weights = weights * (mass.sum() / (2.0 * mass))[y]
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    if sources is None:
        model = LogisticRegression(C=C, max_iter=2000)
        model.fit(z, y, sample_weight=weights)
        return LinearFit(
            mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]), C
        )
    names = sorted(set(sources))
    dummies = (np.asarray(sources)[:, None] == np.asarray(names)[None, :]).astype(np.float64)
    model = LogisticRegression(C=C, max_iter=2000, fit_intercept=False)
    model.fit(np.hstack([z, dummies]), y, sample_weight=weights)
    coef = model.coef_[0, : z.shape[1]].astype(np.float64)
    intercept = float(np.average(model.coef_[0, z.shape[1] :]))
    if pooled_mix > 0.0:
        pooled = fit_linear(x, y, weights, C)  # already balanced, if asked
        coef = coef + pooled_mix * pooled.coef
        intercept = intercept + pooled_mix * pooled.intercept
    return LinearFit(mean, scale, coef, intercept, C)


def choose_c(
    x: np.ndarray,
    y: np.ndarray,
    weak: np.ndarray,
    strong: np.ndarray,
    sources: Sequence[str],
    weights: np.ndarray,
    config: TrainConfig,
) -> tuple[float, dict[str, float]]:
    """The C with the best mean held-out APGR over source-grouped folds (or stratified, if few)."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if config.C is not None:
        return config.C, {}
    groups = np.asarray(sources)
    n_groups = len(set(sources))
    if n_groups >= 3:
        splits = list(GroupKFold(n_splits=min(config.folds, n_groups)).split(x, y, groups))
    else:
        folds = max(2, min(config.folds, int(np.bincount(np.round(y).astype(np.int64)).min())))
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y))
    results: dict[str, float] = {}
    for c in config.cs:
        apgrs = []
        for train_idx, test_idx in splits:
            if len(np.unique(y[train_idx])) < 2:
                continue
            fit = _fit(x[train_idx], y[train_idx], weights[train_idx], c, groups[train_idx], config)
            m = routing_metrics(fit.predict(x[test_idx]), weak[test_idx], strong[test_idx])
            if np.isfinite(m.apgr):
                apgrs.append(m.apgr)
        results[f"{c:g}"] = float(np.mean(apgrs)) if apgrs else float("nan")
    finite = {k: v for k, v in results.items() if np.isfinite(v)}
    best = max(finite, key=lambda k: finite[k]) if finite else f"{config.cs[0]:g}"
    return float(best), results


def _fit(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float, sources: np.ndarray, config: TrainConfig
) -> LinearFit:
    balanced = config.class_balanced
    if config.source_effects and len(set(sources.tolist())) > 1:
        return fit_linear(x, y, w, c, sources.tolist(), config.pooled_mix, balanced)
    return fit_linear(x, y, w, c, class_balanced=balanced)


def train_arrays(
    x: np.ndarray,
    weak: np.ndarray,
    strong: np.ndarray,
    sources: Sequence[str],
    config: TrainConfig,
    small: np.ndarray | None = None,
    large: np.ndarray | None = None,
) -> LinearFit:
    """Labels, weights, C by cross-validation, then the final fit on everything given.

    ``small``/``large``: panel means for the panel labels (NaN where unknown); the cross-validation
    still scores APGR on the real weak/strong outcomes.
    """
    y = make_labels(config.label, weak, strong, config.threshold, small, large)
    weights = source_weights(sources, config.source_weight_power)
    weights = weights * source_multipliers(sources, config.source_multipliers)
    weights = source_shares(weights, sources, config.source_shares)
    c, cv = choose_c(x, y, weak, strong, sources, weights, config)
    fit = _fit(x, y, weights, c, np.asarray(sources), config)
    fit.cv = cv
    return fit


def train(
    examples: Sequence[Example],
    encoder: Encoder,
    config: TrainConfig = TrainConfig(),
    name: str = "tiergate-router",
    progress: bool = False,
) -> Artifact:
    """Train an artifact on ``examples``, calibrated on the same mix."""
    if not examples:
        raise RouterError("no training examples")
    x = feature_matrix(examples, config.features, encoder, progress, config.max_length)
    weak = np.array([e.weak for e in examples])
    strong = np.array([e.strong for e in examples])
    sources = [e.source for e in examples]
    small, large = panel_arrays(examples)
    fit = train_arrays(x, weak, strong, sources, config, small, large)
    summary: dict[str, Any] = {
        "examples": len(examples),
        "sources": dict(sorted(Counter(sources).items())),
        "C": fit.C,
        "cv_apgr_by_C": fit.cv,
        "label_threshold": config.threshold,
        "source_weight_power": config.source_weight_power,
        "class_balanced": config.class_balanced,
        "source_effects": config.source_effects,
        "pooled_mix": config.pooled_mix,
        **(
            {"source_multipliers": dict(config.source_multipliers)}
            if config.source_multipliers
            else {}
        ),
        **({"source_shares": dict(config.source_shares)} if config.source_shares else {}),
    }
    artifact = fit.artifact(
        name=name,
        encoder_name=encoder.name,
        encoder_dimension=encoder.dimension,
        features=config.features,
        label=config.label,
        training=summary,
        encoder_max_length=config.max_length,
    )
    calibrate(artifact, fit.predict(x), sources, config.calibration_sources)
    return artifact


def calibrate(
    artifact: Artifact, scores: np.ndarray, sources: Sequence[str], names: Sequence[str]
) -> None:
    """Calibrate on the training prompts of the sources ``names`` (all if empty), each source
    weighing the same: the reference mix that policies' target fractions refer to."""
    keep = np.array([not names or in_sources(s, names) for s in sources])
    if not keep.any():
        raise RouterError(f"no training source matches --calibrate-on {', '.join(names)}")
    kept = [s for s, k in zip(sources, keep, strict=True) if k]
    mix = ", ".join(sorted(set(kept))) if names else "the training data"
    artifact.calibrate(
        scores[keep], f"{mix}, every source weighted equally", source_weights(kept, 1.0)
    )
