"""The Verifier the gateway holds: p_escalate for a cheaper tier's answer to a request.

p_escalate is the probability that the answer is not acceptable, learned from answer outcomes
(router/training/verifier_fit.py) with the router's house style: MiniLM embeddings of the answer
and the request plus cheap answer features (router/verifier_features.py), a logistic regression,
one checked JSON artifact (``verifier.json``, the router artifact's format) with its model card.

``load_verifier`` loads the shipped artifact (``router/artifacts/verifier/``) or another one;
pass the Router's encoder to share one MiniLM between both. ``Verifier.score`` embeds a whole
batch in one encoder call and is safe to call from worker threads. The answer is its text: the
message content (a gateway judging a tool call can pass the call's JSON as text).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from router.artifact import Artifact, load_artifact
from router.conversation import Conversation, ConversationError, Item, to_conversation
from router.encoder import Encoder, load_encoder
from router.errors import RouterError
from router.model import artifact_info
from router.verifier_features import featurize_answers

VERIFIER_FILE = "verifier.json"


def default_verifier_dir() -> Path:
    """The verifier shipped inside the package: ``router/artifacts/verifier/``."""
    return Path(str(resources.files("router") / "artifacts" / "verifier"))


class Verifier:
    """Scores (request, answer) pairs with p_escalate."""

    def __init__(self, artifact: Artifact, encoder: Encoder) -> None:
        if artifact.encoder_name != encoder.name or artifact.encoder_dimension != encoder.dimension:
            raise RouterError(
                f"verifier {artifact.name!r} was trained with {artifact.encoder_name!r} "
                f"({artifact.encoder_dimension} dimensions) but the encoder is {encoder.name!r} "
                f"({encoder.dimension}); load the matching encoder or retrain"
            )
        self.artifact = artifact
        self.encoder = encoder

    def score(self, requests: Sequence[Item], answers: Sequence[str]) -> np.ndarray:
        """p_escalate (float64 in [0, 1]) for each request (a prompt or a messages list) and the
        answer given to it; RouterError names the item that is neither form or not a string."""
        if len(requests) != len(answers):
            raise RouterError(f"{len(requests)} requests but {len(answers)} answers")
        conversations: list[Conversation] = []
        for index, (item, answer) in enumerate(zip(requests, answers, strict=True)):
            try:
                conversations.append(to_conversation(item))
            except ConversationError as exc:
                raise RouterError(f"item {index}: {exc}") from None
            if not isinstance(answer, str):
                raise RouterError(
                    f"answer {index} is a {type(answer).__name__}; expected the answer's text"
                )
        return self.score_conversations(conversations, answers)

    def score_conversations(
        self, conversations: Sequence[Conversation], answers: Sequence[str]
    ) -> np.ndarray:
        """p_escalate for already-normalised conversations (what ``score`` calls)."""
        if not conversations:
            return np.zeros(0, dtype=np.float64)
        matrix = featurize_answers(conversations, answers, self.artifact.features, self._encode)
        return self.artifact.predict(matrix)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode(texts, max_length=self.artifact.encoder_max_length)

    def threshold_for_fraction(self, fraction: float) -> float:
        """The p_escalate threshold escalating about ``fraction`` of the calibration mix."""
        return self.artifact.threshold_for_fraction(fraction)

    @property
    def info(self) -> dict[str, Any]:
        """JSON-safe metadata: name, format, encoder, features, training summary."""
        return artifact_info(self.artifact, self.encoder)


def load_verifier_artifact(artifact_dir: str | Path | None = None) -> Artifact:
    """Read and check ``verifier.json`` (default: the shipped one), before any encoder load."""
    directory = Path(artifact_dir) if artifact_dir is not None else default_verifier_dir()
    return load_artifact(directory, file_name=VERIFIER_FILE)


def load_verifier(
    artifact_dir: str | Path | None = None,
    encoder_path: str | Path | None = None,
    runtime: str | None = None,
    encoder: Encoder | None = None,
) -> Verifier:
    """Load a verifier artifact (default: the shipped one) and an encoder into a Verifier.

    ``encoder``: reuse one already loaded (the Router's), else load the local one
    (``encoder_path``, ``runtime`` as in router.encoder.load_encoder). The artifact is checked
    before the slow encoder load, so a bad file fails fast.
    """
    artifact = load_verifier_artifact(artifact_dir)
    return Verifier(
        artifact, encoder if encoder is not None else load_encoder(encoder_path, runtime)
    )
