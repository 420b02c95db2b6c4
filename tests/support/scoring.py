"""A fake router for gateway tests: prompts containing "HARD" score 0.9, others 0.1.

It has the same surface as the trained router (`score`, `threshold_for_fraction`, `info`), so the
gateway's real batching, policy and calibration code paths run; `batches` records each call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class KeywordScorer:
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.info = {"name": "keyword-fake"}

    def score(self, items: Sequence[Any]) -> np.ndarray:
        self.batches.append(len(items))
        return np.array([0.9 if "HARD" in _text(i) else 0.1 for i in items], dtype=np.float64)

    def threshold_for_fraction(self, fraction: float) -> float:
        return 1.0 - fraction


def _text(item: Any) -> str:
    if isinstance(item, str):
        return item
    return " ".join(str(m.get("content") or "") for m in item)
