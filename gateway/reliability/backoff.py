"""Retrying one deployment before falling back: which failures, and how long to wait.

Retries happen only before the first byte reaches the client (after it, the answer belongs to the
deployment that started it). The wait is exponential with full jitter (AWS's "Exponential Backoff
and Jitter"): a random time in [0, min(cap, base * 2**attempt)], so replicas that failed together do
not retry together. A 429 is retried only when its `Retry-After` is short enough to wait for;
otherwise the next deployment is a better bet than waiting. A timeout is never retried on the same
deployment: it has already cost the client the whole timeout once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from gateway.upstream.base import UpstreamError


@dataclass
class Backoff:
    base_s: float = 0.1
    cap_s: float = 2.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, error: UpstreamError) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None if this error is not retried."""
        if not error.retried:
            return None
        if error.kind == "rate_limited":
            if error.retry_after is None or error.retry_after > self.cap_s:
                return None
            return error.retry_after
        return self.rng.uniform(0.0, min(self.cap_s, self.base_s * 2**attempt))
