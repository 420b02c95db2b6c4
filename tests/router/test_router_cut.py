"""The router's cost does not grow with the prompt (issue 13, item 5): the text is cut to what the
encoder can read before it is tokenised, and the cut never changes what the encoder reads (the
retrained router's `length` feature still counts the whole text: that is its point)."""

from __future__ import annotations

import time

import numpy as np

from router import Router
from router.model import CHARS_PER_PIECE

SENTENCE = (
    "Write a Python function that merges overlapping intervals, then prove its complexity. "
)
ASCII_ART = "draw this:\n" + "                                     ,-.\n" * 200
"""Whitespace-heavy text: about 12 characters a word piece, the most seen in the shared data."""


def uncached(router: Router) -> Router:
    """The same artifact and encoder without the embedding cache, so every call encodes."""
    return Router(router.artifact, router.encoder, cache_size=0)


def test_the_cut_keeps_every_word_piece_the_encoder_reads(real_router: Router) -> None:
    length = real_router.artifact.encoder_max_length
    assert length == 128 and real_router.cut_chars == length * CHARS_PER_PIECE
    for text in (SENTENCE * 100, ASCII_ART, "x" * 50_000, "na\u00efve caf\u00e9 " * 2000):
        cut = text[: real_router.cut_chars]
        assert len(cut) < len(text)
        whole = real_router.encoder.encode([text[:60_000]], max_length=length)
        assert np.abs(real_router.encoder.encode([cut], max_length=length) - whole).max() < 1e-6


def test_a_3_8_mb_prompt_embeds_as_its_prefix_and_scores_quickly(real_router: Router) -> None:
    router = uncached(real_router)
    big = SENTENCE * (3_800_000 // len(SENTENCE))
    router.score([SENTENCE])  # warm
    started = time.perf_counter()
    (p_big,) = router.score([big])
    took = time.perf_counter() - started
    assert 0.0 <= p_big <= 1.0
    assert took < 0.5, f"{took:.2f}s for a 3.8 MB prompt"
    # The tokenizer truncates the 20,000-character prefix by itself: the same vector.
    whole, prefix = router.embed([big]).vectors, router.embed([big[:20_000]]).vectors
    assert np.abs(whole - prefix).max() < 1e-6
    conversation = [{"role": "system", "content": big}, {"role": "user", "content": big}]
    started = time.perf_counter()
    router.score([conversation])
    assert time.perf_counter() - started < 0.5


def test_a_lone_surrogate_scores_instead_of_failing(real_router: Router) -> None:
    """The gateway refuses such text where it parses a request; the router, used by the CLI too,
    scores it with the surrogate replaced rather than raising from its tokenizer."""
    router = uncached(real_router)
    (p,) = router.score(["Translate x\ud800y into Spanish."])
    assert 0.0 <= p <= 1.0
