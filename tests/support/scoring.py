"""A fake router for gateway tests: prompts containing "HARD" score 0.9, others 0.1; and a fake
route classifier: a prompt containing a route's keyword belongs to that route.

They have the same surface as the trained router (`score`, `threshold_for_fraction`, `info`) and
the fitted routes (`names`, `classify`), so the gateway's real batching, policy and calibration
code paths run; `batches` records each call. Like the real router's tokenizer, the scorer raises on
text that is not valid Unicode (a lone surrogate), and it raises on any prompt containing "POISON",
so tests can make one item of a batch fail. `delay_s` makes each call take that long, so
concurrent requests pile up into batches as they do in front of the real encoder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from router import RouteMatch


class KeywordScorer:
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.info = {"name": "keyword-fake"}
        self.delay_s = 0.0

    def score(self, items: Sequence[Any]) -> np.ndarray:
        self.batches.append(len(items))
        if self.delay_s:
            time.sleep(self.delay_s)
        texts = [_text(i) for i in items]
        for text in texts:
            text.encode("utf-8")  # what a tokenizer does first: UnicodeEncodeError on surrogates
            if "POISON" in text:
                raise ValueError("the fake router cannot score this item")
        return np.array([0.9 if "HARD" in t else 0.1 for t in texts], dtype=np.float64)

    def threshold_for_fraction(self, fraction: float) -> float:
        return 1.0 - fraction


class KeywordClassifier:
    """`keywords`: route name -> a word whose presence claims the route with probability 0.95;
    `"maybe <word>"` claims it with 0.4 only (below the default confidence of 0.6)."""

    def __init__(self, keywords: dict[str, str], confidence: float = 0.6) -> None:
        self.keywords = keywords
        self.confidence = confidence
        self.batches: list[int] = []

    @property
    def names(self) -> list[str]:
        return list(self.keywords)

    def classify(self, items: Sequence[Any]) -> list[RouteMatch]:
        self.batches.append(len(items))
        matches = []
        for item in items:
            text = _text(item)
            found = [(n, w) for n, w in self.keywords.items() if w in text]
            if not found:
                matches.append(RouteMatch(None, 0.1, self.names[0]))
                continue
            name, word = found[0]
            p = 0.4 if f"maybe {word}" in text else 0.95
            matches.append(RouteMatch(name if p >= self.confidence else None, p, name))
        return matches


def _text(item: Any) -> str:
    if isinstance(item, str):
        return item
    return " ".join(str(m.get("content") or "") for m in item)
