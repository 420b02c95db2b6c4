"""The Router the gateway holds: an artifact joined to its encoder, scoring batches of requests.

``load_router`` is the one entry point: it finds the shipped artifact (or the given one), loads the
local encoder and refuses an artifact trained for another encoder. ``Router.score`` embeds a whole
batch in one encoder call and is safe to call from worker threads.

For operator routes the gateway embeds a batch once: ``Router.embed`` returns each request's last
user turn as the artifact embeds it, ``Router.score_embedded`` scores from those vectors and
``Routes.classify_embedded`` (router/routes.py) classifies the same vectors.

The router keeps the embeddings of the texts it saw last (``cache_size``, 4,096 by default, about
1.5 KB each): an agent's tool loop sends the same last user turn at every step, and a repeated text
costs a hash instead of an encoder run. The vectors are the encoder's own, so scores are unchanged.

Each text is cut to what the encoder can read before it is tokenised (``CHARS_PER_PIECE``), so a
decision costs the same for a prompt of any size.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from router.artifact import FORMAT_VERSION, Artifact, load_artifact
from router.conversation import (
    Conversation,
    ConversationError,
    Item,
    last_user_text,
    to_conversation,
)
from router.encoder import Encoder, effective_length, load_encoder
from router.errors import RouterError
from router.features import featurize

DEFAULT_CACHE_SIZE = 4096
CHARS_PER_PIECE = 16
"""Characters of text kept per word piece the encoder reads, before tokenising.

The encoder reads the first ``max_length`` word pieces (128 for the shipped artifact) and drops
the rest, but its tokenizer splits the whole text first: a 3.8 MB prompt took 13 s and 1.8 GB
for 128 pieces. So the text is cut first, to ``max_length * CHARS_PER_PIECE`` characters (2,048
for 128 pieces), and must never lose a piece the encoder would have read. Measured on the shared
routing data (33,685 distinct texts: every benchmark prompt and AlpacaEval's instructions and
answers, MiniLM's tokenizer; `python -m bench.router_cut`): the first 126 text pieces span 564
characters at the median, 730 at p99 and 1,535 at most (an ASCII-art drawing, 12.2 characters a
piece, whitespace runs counting as characters); 16 a piece covers that with a third to spare.
Only text made to be odd (kilobytes of spaces between two words) reads differently when cut.
"""


def default_artifact_dir() -> Path:
    """The artifact shipped inside the package: ``router/artifacts/default/``."""
    return Path(str(resources.files("router") / "artifacts" / "default"))


@dataclass(frozen=True)
class Embedded:
    """A batch embedded once: its conversations and each one's last user turn as a vector (the
    artifact's encoder and word-piece limit), for ``Router.score_embedded`` and
    ``Routes.classify_embedded``."""

    conversations: tuple[Conversation, ...]
    texts: tuple[str, ...]
    vectors: np.ndarray


class Router:
    """Scores requests with p_strong, the probability that only the strong model answers well."""

    def __init__(
        self, artifact: Artifact, encoder: Encoder, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        if artifact.encoder_name != encoder.name or artifact.encoder_dimension != encoder.dimension:
            raise RouterError(
                f"artifact {artifact.name!r} was trained with {artifact.encoder_name!r} "
                f"({artifact.encoder_dimension} dimensions) but the encoder is {encoder.name!r} "
                f"({encoder.dimension}); load the matching encoder or retrain"
            )
        self.artifact = artifact
        self.encoder = encoder
        self.cut_chars = (
            effective_length(artifact.encoder_max_length, encoder.max_seq_length) * CHARS_PER_PIECE
        )
        """Characters of each text the encoder is given (`CHARS_PER_PIECE`)."""
        self.cache_size = max(0, cache_size)
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.cache_hits = 0

    def score(self, items: Sequence[Item]) -> np.ndarray:
        """p_strong (float64 in [0, 1]) for each item: a prompt string or an OpenAI messages list.

        One encoder call per batch; RouterError names the item that is neither form.
        """
        return self.score_conversations(_conversations(items))

    def embed(self, items: Sequence[Item]) -> Embedded:
        """Normalise and embed a batch once (through the cache); RouterError as in ``score``."""
        conversations = tuple(_conversations(items))
        texts = tuple(last_user_text(c) for c in conversations)
        return Embedded(conversations, texts, self._encode(texts))

    def score_embedded(self, embedded: Embedded) -> np.ndarray:
        """p_strong for an ``embed``ded batch: equal to ``score`` on the same items. Texts other
        features pick (another turn, the system prompt) are embedded here."""
        if not embedded.conversations:
            return np.zeros(0, dtype=np.float64)
        known = dict(zip(embedded.texts, embedded.vectors, strict=True))

        def encode(texts: Sequence[str]) -> np.ndarray:
            missing = [t for t in dict.fromkeys(texts) if t not in known]
            if missing:
                known.update(zip(missing, self._encode(missing), strict=True))
            return np.stack([known[t] for t in texts])

        matrix = featurize(embedded.conversations, self.artifact.features, encode)
        return self.artifact.predict(matrix)

    def score_conversations(self, conversations: Sequence[Conversation]) -> np.ndarray:
        """p_strong for already-normalised conversations (what ``score`` calls)."""
        if not conversations:
            return np.zeros(0, dtype=np.float64)
        matrix = featurize(conversations, self.artifact.features, self._encode)
        return self.artifact.predict(matrix)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        """The encoder's vectors for ``texts``, running it only on texts not in the cache; each
        text cut to what the encoder reads first (``readable``)."""
        texts = [readable(text, self.cut_chars) for text in texts]
        max_length = self.artifact.encoder_max_length
        if self.cache_size == 0:
            return self.encoder.encode(texts, max_length=max_length)
        keys = [_digest(text) for text in texts]
        found: dict[bytes, np.ndarray] = {}
        with self._cache_lock:
            for key in keys:
                vector = self._cache.get(key)
                if vector is not None:
                    self._cache.move_to_end(key)
                    found[key] = vector
                    self.cache_hits += 1
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
        if missing:
            vectors = self.encoder.encode(list(missing.values()), max_length=max_length)
            fresh = dict(zip(missing, vectors, strict=True))
            found.update(fresh)
            with self._cache_lock:
                self._cache.update(fresh)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        if not keys:
            return np.zeros((0, self.encoder.dimension), dtype=np.float32)
        return np.stack([found[key] for key in keys])

    def threshold_for_fraction(self, fraction: float) -> float:
        """The threshold sending about ``fraction`` of the calibration mix to the strong model."""
        return self.artifact.threshold_for_fraction(fraction)

    @property
    def info(self) -> dict[str, Any]:
        """JSON-safe metadata for ``/v1/models``: name, format, encoder, features, training."""
        return {
            **artifact_info(self.artifact, self.encoder),
            "encoder_precision": self.encoder.precision,
            "embedding_dimension": self.artifact.encoder_dimension,
        }


def artifact_info(artifact: Artifact, encoder: Encoder) -> dict[str, Any]:
    """What the router and the verifier say of a loaded artifact: name, format, encoder, the
    length it reads, features, label and a summary of its training."""
    training = artifact.training
    return {
        "name": artifact.name,
        "format_version": FORMAT_VERSION,
        "encoder": artifact.encoder_name,
        "encoder_runtime": encoder.runtime,
        "encoder_max_length": effective_length(artifact.encoder_max_length, encoder.max_seq_length),
        "features": list(artifact.features),
        "label": artifact.label,
        "training": {
            k: training[k] for k in ("examples", "sources", "C", "calibration") if k in training
        },
    }


def readable(text: str, chars: int) -> str:
    """``text`` as the encoder takes it: its first ``chars`` characters, and a lone surrogate
    (valid JSON, not valid Unicode: the tokenizer raises on it) replaced, so one odd text can
    neither cost more than any other nor fail the batch it is in."""
    cut = text[:chars]
    if cut.isascii():
        return cut
    try:
        cut.encode("utf-8")
    except UnicodeEncodeError:
        return cut.encode("utf-8", "replace").decode("utf-8")
    return cut


def _conversations(items: Sequence[Item]) -> list[Conversation]:
    conversations: list[Conversation] = []
    for index, item in enumerate(items):
        try:
            conversations.append(to_conversation(item))
        except ConversationError as exc:
            raise RouterError(f"item {index}: {exc}") from None
    return conversations


def _digest(text: str) -> bytes:
    """The cache key of a text: 16 bytes, so a long prompt is not kept in memory."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def load_router(
    artifact_dir: str | Path | None = None,
    encoder_path: str | Path | None = None,
    runtime: str | None = None,
    cache_size: int = DEFAULT_CACHE_SIZE,
    precision: str | None = None,
    threads: int | None = None,
) -> Router:
    """Load an artifact (default: the shipped one) and its local encoder into a Router.

    The artifact is read and checked before the (slow) encoder load, so a bad file fails fast.
    ``runtime``, ``precision`` and ``threads`` choose how the encoder runs (router.encoder's
    resolve_runtime, resolve_precision, resolve_threads).
    """
    directory = Path(artifact_dir) if artifact_dir is not None else default_artifact_dir()
    artifact = load_artifact(directory)
    encoder = load_encoder(encoder_path, runtime, precision, threads)
    return Router(artifact, encoder, cache_size)
