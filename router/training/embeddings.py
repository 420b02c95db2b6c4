"""The on-disk embedding cache, so that training and evaluation embed each text once.

Entries live under ``~/.cache/tiergate/embeddings/<model-key>/`` (or ``TIERGATE_CACHE_DIR``) as .npz
shards holding sha256 keys of the texts and their vectors; no pickle. A run loads every shard of
its model, embeds only the texts not seen before and appends one new shard. The cache is a speed-up
only: deleting it changes nothing but the time a run takes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from router.encoder import Encoder, effective_length
from router.settings import RouterSettings

_CHUNK = 512


def cache_root() -> Path:
    """The cache directory: TIERGATE_CACHE_DIR, else ~/.cache/tiergate/embeddings."""
    return RouterSettings().embedding_cache_dir()


def text_key(model_name: str, text: str) -> str:
    """The cache key of one text under one model (hex sha256 of both)."""
    return hashlib.sha256(f"{model_name}\x00{text}".encode()).hexdigest()


def embed_cached(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    max_length: int | None = None,
    root: Path | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Embed ``texts`` (one row each, in order), reusing and extending the on-disk cache.

    ``max_length`` as in ``Encoder.encode``; each length and each precision (``cache_tag``: an
    int8 model per recipe) has its own cache; float32 keeps the key it had before precisions.
    """
    length = effective_length(max_length, encoder.max_seq_length)
    model_key = f"{encoder.name}\x00max_length={length}"
    if encoder.cache_tag:
        model_key += f"\x00precision={encoder.cache_tag}"
    directory = (root or cache_root()) / hashlib.sha256(model_key.encode()).hexdigest()[:16]
    known = _load_shards(directory, encoder.dimension)
    keys = [text_key(encoder.name, t) for t in texts]
    missing: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in known and key not in missing:
            missing[key] = text
    if missing:
        new_keys = list(missing)
        # Longest texts are the slowest; sorting by length keeps padding low inside each chunk,
        # and writing a shard per chunk keeps finished work if a long run is interrupted.
        new_keys.sort(key=lambda k: len(missing[k]))
        chunks = range(0, len(new_keys), _CHUNK)
        if progress:
            from tqdm import tqdm

            chunks = tqdm(chunks, desc="embedding", unit="chunk", total=len(chunks))
        for start in chunks:
            chunk_keys = new_keys[start : start + _CHUNK]
            matrix = encoder.encode([missing[k] for k in chunk_keys], max_length=length)
            _write_shard(directory, chunk_keys, matrix)
            known.update(zip(chunk_keys, matrix, strict=True))
    if not keys:
        return np.zeros((0, encoder.dimension), dtype=np.float32)
    return np.stack([known[k] for k in keys]).astype(np.float32)


def _load_shards(directory: Path, dimension: int) -> dict[str, np.ndarray]:
    known: dict[str, np.ndarray] = {}
    if not directory.is_dir():
        return known
    for shard in sorted(directory.glob("*.npz")):
        try:
            with np.load(shard, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
        except (OSError, ValueError, KeyError):
            continue  # a damaged shard is a cache miss, not an error
        if vectors.ndim != 2 or vectors.shape[1] != dimension:
            continue
        known.update(zip((str(k) for k in keys), vectors, strict=True))
    return known


def _write_shard(directory: Path, keys: list[str], vectors: np.ndarray) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=np.array(keys), vectors=vectors.astype(np.float32))
        os.replace(tmp, directory / f"{time.time_ns()}-{os.getpid()}.npz")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
