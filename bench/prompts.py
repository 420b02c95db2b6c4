"""Benchmark prompts of a given length, deterministic, about four characters per token.

The gateway estimates prompt tokens as characters / 4 before any tokenizer runs; these prompts are
plain English sentences sized on that estimate, so "128 tokens" means what the gateway and its
policies see as 128 tokens.
"""

from __future__ import annotations

import functools

_SENTENCES = (
    "Explain how a hash map handles collisions and what that costs.",
    "Summarise the plot of a short story about a lighthouse keeper.",
    "Write a polite email asking a colleague to review a pull request.",
    "Compare the trade-offs of threads and async tasks for network servers.",
    "List three ways to reduce the memory used by a Python service.",
    "Describe the water cycle for a class of ten-year-old students.",
)


@functools.cache
def prompt(tokens: int) -> str:
    """A prompt of about `tokens` tokens (4 characters each)."""
    chars = tokens * 4
    parts: list[str] = []
    total = 0
    i = 0
    while total < chars:
        sentence = _SENTENCES[i % len(_SENTENCES)]
        parts.append(sentence)
        total += len(sentence) + 1
        i += 1
    return " ".join(parts)[:chars]
