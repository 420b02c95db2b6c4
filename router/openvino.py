"""The OpenVINO runtime of the encoder: the vectors of sentence-transformers, faster and leaner.

The transformer is converted from the sentence-transformers model once (torch is imported for that
only) and kept as OpenVINO IR under ``~/.cache/tiergate/openvino/`` (``TIERGATE_OPENVINO_CACHE``),
keyed by the model files and the OpenVINO version; later starts read the IR and never import torch.
It runs in float32, bfloat16 (OpenVINO's inference precision hint; the weights stay float32) or
int8 (a second IR, quantised once by router/quantization.py and cached beside the first, keyed by
its recipe and calibration prompts as well). Tokenisation uses the model's own ``tokenizer.json``
through Hugging Face ``tokenizers``; mean pooling and normalisation are a few numpy lines, the same
arithmetic as sentence-transformers' Pooling and Normalize modules. An unwritable cache only costs
the conversion (and quantisation) at every start.

``import openvino`` sends a usage event to Google Analytics and writes a client id under ~/intel
whenever the ``openvino_telemetry`` package is importable (it is a dependency of openvino and of
NNCF). A gateway must not phone home, so that package is made unimportable first; openvino and NNCF
then use their own no-op stubs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router.encoder import effective_length, load_sentence_transformer
from router.settings import RouterSettings

log = logging.getLogger(__name__)
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def import_openvino() -> Any:
    """``import openvino`` with its telemetry blocked (see the module docstring)."""
    if "openvino" not in sys.modules and "openvino_telemetry" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
    import openvino

    return openvino


def supports(path: Path) -> bool:
    """Whether the model at ``path`` is transformer + mean pooling (+ normalise), the one pipeline
    this runtime reproduces, with a fast tokenizer file and one weights file."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = json.loads((path / modules[1]["path"] / "config.json").read_text())
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False
    mean_only = pooling.get("pooling_mode_mean_tokens") is True and not any(
        value is True
        for key, value in pooling.items()
        if key.startswith("pooling_mode_") and key != "pooling_mode_mean_tokens"
    )
    return (
        kinds in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
        and mean_only
        and (path / "tokenizer.json").is_file()
        and any((path / f).is_file() for f in _WEIGHT_FILES)
    )


class OpenVINOEncoder:
    """The encoder on OpenVINO (see the module docstring); safe to share between threads."""

    runtime = "openvino"

    def __init__(
        self,
        path: Path,
        name: str,
        tokenizer: Any,
        compiled: Any,
        precision: str = "fp32",
        cache_tag: str = "",
    ) -> None:
        self.path = path
        self.name = name
        self.precision = precision
        self.cache_tag = cache_tag
        self._tokenizer = tokenizer
        self._compiled = compiled
        self._lock = threading.Lock()
        self.dimension = int(compiled.output(0).get_partial_shape()[2].get_length())
        # As sentence-transformers reads it: its own config, else what the positions allow.
        limit = _read_json(path / "sentence_bert_config.json").get("max_seq_length")
        if not limit:
            limit = _read_json(path / "config.json").get("max_position_embeddings", 512)
        self.max_seq_length = int(limit)

    @classmethod
    def load(
        cls, path: Path, name: str, precision: str = "fp32", threads: int | None = None
    ) -> OpenVINOEncoder:
        """Read (or convert, or quantise) the model and compile it for this CPU.

        ``precision``: "fp32", "bf16" or "int8" (router.encoder.PRECISIONS); bf16 on a CPU
        without bfloat16 arithmetic runs fp32, and the encoder's ``precision`` says so.
        ``threads``: cores for one inference (None: OpenVINO's default, every core).
        """
        from tokenizers import Tokenizer

        ov = import_openvino()
        core = ov.Core()
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        tokenizer.no_padding()  # tokenizer.json may carry a fixed padding; chunks are padded here
        if precision == "bf16" and "BF16" not in core.get_property(
            "CPU", "OPTIMIZATION_CAPABILITIES"
        ):
            log.info("this CPU has no bfloat16 arithmetic; the encoder runs fp32")
            precision = "fp32"
        model, tag = _model(path, ov, core, tokenizer, precision)
        config: dict[str, Any] = {
            # int8: what is not quantised stays float32 (OpenVINO would pick bf16 on such CPUs).
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(model, "CPU", config)
        return cls(path, name, tokenizer, compiled, precision, tag)

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None
    ) -> np.ndarray:
        """Tokenise, run the transformer on length-sorted chunks, mean-pool, normalise.

        Sorting by length keeps the padding inside each chunk small; the attention mask makes
        padding exact, so the order changes the work done, not the vectors.
        """
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        with self._lock:
            self._tokenizer.enable_truncation(effective_length(max_length, self.max_seq_length))
            encoded = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
            order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                width = max(len(encoded[i]) for i in chunk)
                ids = np.zeros((len(chunk), width), dtype=np.int64)
                mask = np.zeros((len(chunk), width), dtype=np.int64)
                for row, i in enumerate(chunk):
                    ids[row, : len(encoded[i])] = encoded[i]
                    mask[row, : len(encoded[i])] = 1
                result = self._compiled({"input_ids": ids, "attention_mask": mask})
                hidden = np.asarray(result[0], dtype=np.float32)
                weights = mask[:, :, None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
                norms = np.linalg.norm(pooled, axis=1, keepdims=True)
                out[chunk] = pooled / np.maximum(norms, 1e-12)
        return out

    def count_tokens(self, text: str) -> int:
        with self._lock:
            self._tokenizer.no_truncation()
            return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


def cache_dir() -> Path:
    """Where converted models are kept: TIERGATE_OPENVINO_CACHE, else ~/.cache/tiergate/openvino."""
    return RouterSettings().openvino_cache_dir()


def _model(path: Path, ov: Any, core: Any, tokenizer: Any, precision: str) -> tuple[Any, str]:
    """The model as OpenVINO IR, from the cache or built (and cached): float32 converted from
    the sentence-transformers model; for int8, that quantised (router/quantization.py). With it,
    the encoder's ``cache_tag`` (see router.encoder.Encoder)."""
    key = _cache_key(path, ov)

    def fp32() -> Any:
        return cached_ir(cache_dir() / key, lambda: _convert(path, ov), ov, core)

    if precision != "int8":
        return fp32(), "" if precision == "fp32" else precision
    from router.quantization import int8_model

    return int8_model(key, fp32, tokenizer, ov, core, cache_dir())


def cached_ir(target: Path, build: Callable[[], Any], ov: Any, core: Any) -> Any:
    """The IR kept in ``target``: read when there, else built and saved when the disk allows."""
    xml = target / "model.xml"
    if xml.is_file():
        try:
            return core.read_model(str(xml))
        except RuntimeError as exc:  # a damaged entry is a cache miss
            log.warning("openvino cache entry %s unreadable (%s); building it again", target, exc)
    model = build()
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        staging.mkdir(parents=True, exist_ok=True)
        ov.save_model(model, str(staging / "model.xml"), compress_to_fp16=False)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    except OSError as exc:
        log.warning(
            "could not cache the encoder's IR in %s (%s); building it at every start",
            target.parent,
            exc,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model


def _cache_key(path: Path, ov: Any) -> str:
    """Model files (name, size, modification time) and OpenVINO's version: a new model or a new
    OpenVINO converts again."""
    parts = [ov.get_version(), str(path.resolve())]
    for name in ("config.json", *_WEIGHT_FILES):
        file = path / name
        if file.is_file():
            stat = file.stat()
            parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def _convert(path: Path, ov: Any) -> Any:
    """Convert the sentence-transformers model's transformer (imports torch; a few seconds)."""
    import torch

    transformer = load_sentence_transformer(path)[0].auto_model.eval()

    class LastHidden(torch.nn.Module):
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
        return ov.convert_model(
            LastHidden(),
            example_input={"input_ids": example, "attention_mask": example},
            input=[("input_ids", shape, ov.Type.i64), ("attention_mask", shape, ov.Type.i64)],
            share_weights=False,
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
