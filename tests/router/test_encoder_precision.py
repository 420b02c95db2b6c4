"""The encoder's precision setting: honoured, checked, cached apart, and never phoning home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from router import RouterError
from router.encoder import DEFAULT_PRECISION, load_encoder, resolve_precision, resolve_threads
from router.settings import PRECISION_ENV, THREADS_ENV
from router.training.embeddings import embed_cached

PROMPTS = [
    "hi",
    'Translate "good morning" into Spanish.',
    "Write a Python function that merges overlapping intervals and prove it runs in O(n log n).",
    "日本語で東京の天気を教えてください。 Объясни теорему Ферма.",
    "Question: which gas do plants absorb?\nA. oxygen\nB. carbon dioxide\nC. helium\nAnswer:",
]


@pytest.fixture(scope="module")
def fp32_vectors(real_router: Any) -> np.ndarray:
    assert real_router.encoder.precision == "fp32"
    vectors: np.ndarray = real_router.encoder.encode(PROMPTS, max_length=128)
    return vectors


@pytest.fixture(scope="module")
def int8_encoder() -> Iterator[Any]:
    """The int8 encoder with the shipped recipe (quantised once per cache, about a minute)."""
    yield load_encoder(precision="int8")


def test_precision_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert resolve_precision() == DEFAULT_PRECISION
    monkeypatch.setenv(PRECISION_ENV, " INT8 ")
    assert resolve_precision() == "int8"
    assert resolve_precision("bf16") == "bf16"  # the argument wins
    monkeypatch.setenv(PRECISION_ENV, "fp16")
    with pytest.raises(RouterError, match=r"'fp16' is not one of fp32, bf16, int8 \(set by "):
        resolve_precision()
    with pytest.raises(RouterError, match="'int4' is not one of fp32, bf16, int8"):
        load_encoder(precision="int4")  # refused before anything loads


def test_thread_count_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert resolve_threads() is None
    assert resolve_threads(2) == 2 and resolve_threads(0) is None  # 0: every core
    monkeypatch.setenv(THREADS_ENV, "1")
    assert resolve_threads() == 1
    monkeypatch.setenv(THREADS_ENV, "half")
    with pytest.raises(RouterError, match=f"'half' is not a whole number >= 0 .*{THREADS_ENV}"):
        resolve_threads()


def test_int8_vectors_differ_from_fp32_but_stay_close(
    int8_encoder: Any, fp32_vectors: np.ndarray
) -> None:
    assert (int8_encoder.runtime, int8_encoder.precision) == ("openvino", "int8")
    assert int8_encoder.cache_tag.startswith("int8-")
    vectors = int8_encoder.encode(PROMPTS, max_length=128)
    assert vectors.shape == fp32_vectors.shape
    assert not np.allclose(vectors, fp32_vectors, atol=1e-4)  # really another arithmetic
    cosine = np.sum(vectors * fp32_vectors, axis=1)
    # Mixed scripts move most (0.974 measured); decisions, not vectors, are what is judged.
    assert np.all(cosine > 0.96) and np.median(cosine) > 0.99, cosine
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_bf16_vectors_stay_closer_still(fp32_vectors: np.ndarray) -> None:
    encoder = load_encoder(precision="bf16", threads=1)
    if encoder.precision != "bf16":
        pytest.skip("this CPU has no bfloat16 arithmetic; the encoder fell back to fp32")
    vectors = encoder.encode(PROMPTS, max_length=128)
    assert not np.allclose(vectors, fp32_vectors, atol=1e-5)
    assert np.all(np.sum(vectors * fp32_vectors, axis=1) > 0.999)


def test_the_embedding_cache_keeps_precisions_apart(tmp_path: Path, fake_encoder: Any) -> None:
    """Vectors of one precision are never served for another; fp32 keeps its old entries."""
    fp32, int8 = fake_encoder, type(fake_encoder)()
    int8.precision, int8.cache_tag = "int8", "int8-0123456789abcdef"
    embed_cached(fp32, ["a prompt"], max_length=128, root=tmp_path)
    embed_cached(int8, ["a prompt"], max_length=128, root=tmp_path)
    assert len(int8.calls) == 1  # not a hit on the fp32 entry
    assert len(list(tmp_path.iterdir())) == 2
    embed_cached(int8, ["a prompt"], max_length=128, root=tmp_path)
    assert len(int8.calls) == 1


def test_int8_ir_is_cached_under_its_own_key() -> None:
    from router.openvino import import_openvino
    from router.quantization import DEFAULT_RECIPE, Int8Recipe, recipe_key

    ov = import_openvino()
    key = recipe_key(DEFAULT_RECIPE, ["a", "b"], ov)
    assert key == recipe_key(Int8Recipe(), ["a", "b"], ov)
    assert key != recipe_key(DEFAULT_RECIPE, ["a", "c"], ov)  # other calibration prompts
    assert key != recipe_key(Int8Recipe(subset_size=10), ["a", "b"], ov)  # another recipe
