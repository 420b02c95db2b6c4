"""Running the common-sense set: the figures of an artifact, and the record training writes.

``record`` is what ``tiergate router train --evalset`` stores in the artifact: the set's figures at
the balanced policy's fraction and each evaluation prompt's nearest training text (cosine, in the
router's embedding space), tied to the set's sha256 so that a later edit of the set is noticed.
``report`` is the ``tiergate router common-sense`` command's table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router.artifact import Artifact
from router.conversation import to_conversation
from router.encoder import Encoder
from router.features import embedding_texts, featurize
from router.training.data import Example
from router.training.embeddings import embed_cached
from router.training.evalset import (
    MAX_TRAINING_COSINE,
    CommonSenseFigures,
    EvalPrompt,
    common_sense_figures,
    evalset_record,
    load_evalset,
    nearest_cosines,
)

BALANCED_FRACTION = 0.5  # the `balanced` policy (policies/presets/policies.yaml)


def score_prompts(
    artifact: Artifact, encoder: Encoder, prompts: Sequence[EvalPrompt]
) -> np.ndarray:
    """p_strong of each prompt, as the gateway scores a one-message request."""

    def encode(texts: Sequence[str]) -> np.ndarray:
        return embed_cached(encoder, texts, max_length=artifact.encoder_max_length)

    conversations = [to_conversation(p.prompt) for p in prompts]
    return artifact.predict(featurize(conversations, artifact.features, encode))


def figures(
    artifact: Artifact,
    encoder: Encoder,
    prompts: Sequence[EvalPrompt],
    fraction: float = BALANCED_FRACTION,
) -> tuple[CommonSenseFigures, np.ndarray]:
    """The set's figures at the threshold ``fraction`` gets from the calibration, and the scores."""
    scores = score_prompts(artifact, encoder, prompts)
    threshold = artifact.threshold_for_fraction(fraction)
    return common_sense_figures(scores, prompts, threshold, fraction), scores


def record(
    artifact: Artifact, examples: Sequence[Example], encoder: Encoder, path: Path
) -> dict[str, Any]:
    """Store the set's figures and its nearest training texts in ``artifact.training["evalset"]``.

    Every text an embedding feature picks from every training example is compared, embedded as
    the router embeds it (same encoder, same word-piece limit).
    """
    prompts = load_evalset(path)
    texts = sorted(
        {t for e in examples for t in embedding_texts(e.conversation, artifact.features)}
    )
    length = artifact.encoder_max_length
    corpus = embed_cached(encoder, texts, max_length=length)
    queries = embed_cached(encoder, [p.prompt for p in prompts], max_length=length)
    nearest = nearest_cosines(queries, corpus)
    result, _ = figures(artifact, encoder, prompts)
    doc = evalset_record(path, prompts, result, nearest, len(texts))
    artifact.training["evalset"] = doc
    return doc


def report(
    artifact: Artifact,
    encoder: Encoder,
    path: Path,
    fraction: float,
) -> str:
    """A Markdown report: the figures, then each kind's share routed as a person would."""
    prompts = load_evalset(path)
    result, scores = figures(artifact, encoder, prompts, fraction)
    threshold = result.threshold
    lines = [
        f"common-sense set {path.name}: {result.n_simple} simple, {result.n_demanding} demanding",
        f"AUC of p_strong: {result.auc:.3f}",
        f"target strong fraction {fraction:g} -> threshold {threshold:.3f} "
        f"({artifact.training.get('calibration', {}).get('mix', 'calibration mix unknown')})",
        f"simple routed to the small tier: {result.simple_to_small:.1%}",
        f"demanding routed to the large tier: {result.demanding_to_large:.1%}",
        "",
        "| label | kind | n | routed as a person would | mean p_strong |",
        "|---|---|---|---|---|",
    ]
    counts = Counter((p.label, p.kind) for p in prompts)
    for label, kind in sorted(counts):
        rows = [i for i, p in enumerate(prompts) if (p.label, p.kind) == (label, kind)]
        s = scores[rows]
        right = (s >= threshold) if label == "demanding" else (s < threshold)
        lines.append(f"| {label} | {kind} | {len(rows)} | {right.mean():.0%} | {s.mean():.3f} |")
    recorded = artifact.training.get("evalset")
    if isinstance(recorded, dict) and "max_cosine_to_training" in recorded:
        lines += [
            "",
            f"recorded at training: highest cosine of an evaluation prompt to a training text "
            f"{recorded['max_cosine_to_training']:.3f} (limit {MAX_TRAINING_COSINE}), "
            f"over {recorded['training_texts_compared']} texts",
        ]
    return "\n".join(lines)
