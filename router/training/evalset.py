"""The common-sense evaluation set: requests any person would route the same way.

``router/evalsets/common_sense.jsonl`` holds prompts written for Tiergate, one JSON object per line:
``prompt``, ``label`` ("simple": the small tier serves it; "demanding": it needs the large tier)
and ``kind`` (greeting, translate, proof, system_design, ...). The two halves are length-matched,
so that prompt length alone cannot separate them (``length_auc``).

What the router is judged on here (the issue's goals): the AUC of p_strong for "demanding", and at
the threshold a policy's target strong-call fraction gets from the artifact's calibration table,
the share of each half routed as a person would (simple to the small tier, demanding to the large).

The set must stay out of training: ``nearest_cosines`` gives each evaluation prompt's highest
cosine to any training text, in the router's own embedding space, and ``evalset_record`` stores it
in the artifact at training time, tied to the file's sha256
(tests/router/training/test_router_evalset.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import DataError
from router.training.data import read_jsonl

LABELS = ("simple", "demanding")
EVALSET_FILE = "common_sense.jsonl"
MAX_TRAINING_COSINE = 0.9  # an evaluation prompt closer than this to a training text is a leak


@dataclass(frozen=True)
class EvalPrompt:
    """One prompt of the set and how a person would route it."""

    prompt: str
    label: str
    kind: str

    @property
    def demanding(self) -> bool:
        """True for the half that belongs on the large tier."""
        return self.label == "demanding"


@dataclass(frozen=True)
class CommonSenseFigures:
    """The set's figures for one router at one threshold."""

    n_simple: int
    n_demanding: int
    auc: float
    target_strong_fraction: float
    threshold: float
    simple_to_small: float
    demanding_to_large: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return asdict(self)


def default_evalset_path() -> Path:
    """The set shipped inside the package."""
    return Path(str(resources.files("router") / "evalsets" / EVALSET_FILE))


def load_evalset(path: str | Path | None = None) -> list[EvalPrompt]:
    """The prompts of ``path`` (default: the shipped set); DataError naming a malformed line."""
    path = Path(path) if path is not None else default_evalset_path()
    prompts = []
    for line, row in read_jsonl(path):
        prompt, label, kind = row.get("prompt"), row.get("label"), row.get("kind")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(path, line, "'prompt' must be a non-empty string")
        if label not in LABELS:
            raise DataError(path, line, f"'label' is {label!r}; expected one of {LABELS}")
        if not isinstance(kind, str) or not kind:
            raise DataError(path, line, "'kind' must be a non-empty string (greeting, proof, ...)")
        prompts.append(EvalPrompt(prompt, label, kind))
    if not prompts or {p.label for p in prompts} != set(LABELS):
        raise DataError(path, None, "expected prompts of both labels, 'simple' and 'demanding'")
    return prompts


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file's bytes: ties a recorded figure to the exact set it was taken on."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def auc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        raise ValueError("AUC needs at least one positive and one negative")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def length_auc(prompts: Sequence[EvalPrompt], unit: str = "chars") -> float:
    """AUC of prompt length (characters or words) for "demanding": 0.5 when length says nothing."""
    if unit not in ("chars", "words"):
        raise ValueError(f"unit {unit!r}; expected 'chars' or 'words'")
    lengths = [len(p.prompt) if unit == "chars" else len(p.prompt.split()) for p in prompts]
    return auc(lengths, [p.demanding for p in prompts])


def common_sense_figures(
    scores: np.ndarray, prompts: Sequence[EvalPrompt], threshold: float, fraction: float
) -> CommonSenseFigures:
    """AUC of ``scores`` and each half's share routed as a person would at ``threshold``.

    A prompt goes to the large tier when its score is at least the threshold (policies/engine.py).
    """
    scores = np.asarray(scores, dtype=np.float64)
    demanding = np.array([p.demanding for p in prompts])
    large = scores >= threshold
    return CommonSenseFigures(
        n_simple=int((~demanding).sum()),
        n_demanding=int(demanding.sum()),
        auc=auc(scores, demanding),
        target_strong_fraction=fraction,
        threshold=float(threshold),
        simple_to_small=float(np.mean(~large[~demanding])),
        demanding_to_large=float(np.mean(large[demanding])),
    )


def nearest_cosines(queries: np.ndarray, corpus: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Each row of ``queries``: its highest cosine to any row of ``corpus`` (rows normalised)."""
    q = np.asarray(queries, dtype=np.float32)
    best = np.full(len(q), -1.0, dtype=np.float64)
    for start in range(0, len(corpus), chunk):
        block = np.asarray(corpus[start : start + chunk], dtype=np.float32)
        if len(block):
            best = np.maximum(best, (q @ block.T).max(axis=1))
    return best


def evalset_record(
    path: Path,
    prompts: Sequence[EvalPrompt],
    figures: CommonSenseFigures,
    nearest: np.ndarray,
    training_texts: int,
) -> dict[str, Any]:
    """What an artifact records about the set (``training["evalset"]``)."""
    worst = int(np.argmax(nearest))
    return {
        "file": path.name,
        "sha256": file_sha256(path),
        "prompts": len(prompts),
        "length_auc_chars": length_auc(prompts, "chars"),
        "training_texts_compared": training_texts,
        "max_cosine_to_training": float(nearest[worst]),
        "closest_prompt": prompts[worst].prompt,
        "figures": figures.as_dict(),
    }
