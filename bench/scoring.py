"""The benchmark's instant scorer: the gateway's routing path without the encoder.

`bench/gateway_server.py --scorer fake` uses it. A request whose text contains `HARD` scores 0.9
(the large tier under the balanced threshold), any other 0.1, at no cost; a target fraction `f`
calibrates to the threshold `1 - f`. Nothing here is measured: it only has to be instant and
predictable (bench/soak.py sends one request in five with `HARD`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from router import Item


class InstantScorer:
    info: Mapping[str, Any] = {"name": "bench-instant"}

    def score(self, items: Sequence[Item]) -> np.ndarray:
        return np.array([0.9 if "HARD" in str(item) else 0.1 for item in items], dtype=np.float64)

    def threshold_for_fraction(self, fraction: float) -> float:
        return 1.0 - fraction
