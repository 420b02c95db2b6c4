"""How much of a text repeats itself: the share of its word n-grams seen earlier in it.

A model caught in a loop writes the same phrases again and again; the answer check `degenerate`
(`gateway.chat.checks`) and the verifier's `answer_shape` feature both read this one measure.
"""

from __future__ import annotations

import re

LOOP_N = 5
_WORD = re.compile(r"\w+")


def repetition_ratio(text: str, n: int = LOOP_N) -> tuple[float, int]:
    """(share of word n-grams that repeat an earlier one, number of n-grams); lowercased words."""
    words = _WORD.findall(text.lower())
    total = len(words) - n + 1
    if total <= 0:
        return 0.0, 0
    distinct = len(set(zip(*(words[i:] for i in range(n)), strict=False)))
    return 1.0 - distinct / total, total
