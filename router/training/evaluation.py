"""The evaluation protocol: leave-one-source-out, the pooled held-out mix, and the naive baseline.

For each source, a router is trained on every example whose benchmark family differs (so holding out
RouteLLM's GSM8K also withholds LLMRouter's gsm8k) and scores the held-out source. The held-out
scores are then pooled as one traffic mix: all rows, and a balanced pool of at most
``POOL_PER_SOURCE`` rows per source (closer to a gateway's mixed traffic than MMLU-heavy data).
Beside each figure: the naive baseline, the random router and the oracle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from router.training.data import Example
from router.training.fit import TrainConfig, panel_arrays, train_arrays
from router.training.metrics import RoutingMetrics, oracle_scores, random_metrics, routing_metrics

# The naive baseline: MiniLM of the last 1,200 characters, C=1, label "weak model wrong".
NAIVE = TrainConfig(
    features=("tail_1200",),
    label="weak_wrong",
    source_weight_power=0.0,
    C=1.0,
    source_effects=False,
    pooled_mix=0.0,
)
POOL_PER_SOURCE = 500


@dataclass(frozen=True)
class SourceResult:
    """One row of the evaluation table: a source (or pool) and each router's figures on it."""

    source: str
    ours: RoutingMetrics
    naive: RoutingMetrics | None
    random: RoutingMetrics
    oracle: RoutingMetrics

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {
            "source": self.source,
            "ours": self.ours.as_dict(),
            "naive": self.naive.as_dict() if self.naive else None,
            "random": self.random.as_dict(),
            "oracle": self.oracle.as_dict(),
        }


def result_for(
    source: str, ours: np.ndarray, naive: np.ndarray | None, weak: np.ndarray, strong: np.ndarray
) -> SourceResult:
    """Every router's figures on one set of prompts."""
    return SourceResult(
        source=source,
        ours=routing_metrics(ours, weak, strong),
        naive=routing_metrics(naive, weak, strong) if naive is not None else None,
        random=random_metrics(weak, strong),
        oracle=routing_metrics(oracle_scores(weak, strong), weak, strong),
    )


def leave_one_source_out(
    examples: Sequence[Example],
    x_ours: np.ndarray,
    x_naive: np.ndarray,
    config: TrainConfig,
    naive_config: TrainConfig = NAIVE,
    on_source: Callable[[str], None] | None = None,
    train_only: frozenset[str] = frozenset(),
) -> tuple[list[SourceResult], dict[str, np.ndarray]]:
    """Per-source results and held-out scores ({"ours": ..., "naive": ...}, in example order).

    Sources in ``train_only`` (self-written rows, whose outcomes are a person's judgement) are in
    every training fold and never held out; their held-out scores stay 0.
    """
    weak = np.array([e.weak for e in examples])
    strong = np.array([e.strong for e in examples])
    sources = np.array([e.source for e in examples])
    families = np.array([e.family for e in examples])
    small, large = panel_arrays(examples)
    held = {"ours": np.zeros(len(examples)), "naive": np.zeros(len(examples))}
    results = []
    for source in sorted(set(sources.tolist()) - train_only):
        if on_source is not None:
            on_source(source)
        test = sources == source
        train = ~np.isin(families, np.unique(families[test]))
        for key, x, cfg in (("ours", x_ours, config), ("naive", x_naive, naive_config)):
            fit = train_arrays(
                x[train],
                weak[train],
                strong[train],
                sources[train].tolist(),
                cfg,
                small[train],
                large[train],
            )
            held[key][test] = fit.predict(x[test])
        results.append(
            result_for(source, held["ours"][test], held["naive"][test], weak[test], strong[test])
        )
    return results, held


def pooled(
    examples: Sequence[Example], held: dict[str, np.ndarray], per_source: int | None, seed: int = 0
) -> SourceResult:
    """The held-out scores of every source taken together as one mix (optionally balanced)."""
    index = (
        np.arange(len(examples))
        if per_source is None
        else balanced_index([e.source for e in examples], per_source, seed)
    )
    weak = np.array([examples[int(i)].weak for i in index])
    strong = np.array([examples[int(i)].strong for i in index])
    name = "pooled (all rows)" if per_source is None else f"pooled (<= {per_source} per source)"
    return result_for(name, held["ours"][index], held["naive"][index], weak, strong)


def balanced_index(sources: Sequence[str], per_source: int, seed: int = 0) -> np.ndarray:
    """Row indices of at most ``per_source`` rows of each source, drawn with a fixed seed."""
    labels = np.asarray(sources)
    rng = np.random.default_rng(seed)
    picked = []
    for source in sorted(set(labels.tolist())):
        rows = np.flatnonzero(labels == source)
        picked.append(rng.choice(rows, size=min(per_source, len(rows)), replace=False))
    return np.sort(np.concatenate(picked))


def summary(results: Sequence[SourceResult]) -> dict[str, float]:
    """Mean APGR over the sources where the strong model is better and the lowest."""
    ours = [r.ours.apgr for r in results if np.isfinite(r.ours.apgr)]
    naive = [r.naive.apgr for r in results if r.naive is not None and np.isfinite(r.naive.apgr)]
    return {
        "mean_apgr": float(np.mean(ours)) if ours else float("nan"),
        "mean_apgr_naive": float(np.mean(naive)) if naive else float("nan"),
        "min_apgr": float(np.min(ours)) if ours else float("nan"),
        "sources_with_gap": float(len(ours)),
    }
