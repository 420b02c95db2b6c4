"""Backoff: which failures are retried on the same deployment, and how long the wait is."""

from __future__ import annotations

import random

from gateway.reliability.backoff import Backoff
from gateway.upstream.base import Refused, UpstreamError


def test_full_jitter_stays_under_an_exponential_cap() -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0, rng=random.Random(7))
    error = UpstreamError("server_error", "boom", status=500)
    for attempt in range(8):
        ceiling = min(1.0, 0.1 * 2**attempt)
        delays = [backoff.delay(attempt, error) for _ in range(200)]
        assert all(d is not None and 0.0 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100, "jittered, not fixed"


def test_what_is_retried() -> None:
    backoff = Backoff(cap_s=2.0)
    for kind in ("connect", "server_error", "protocol"):
        assert backoff.delay(0, UpstreamError(kind, "x")) is not None  # type: ignore[arg-type]
    for kind in ("timeout", "client_error", "unavailable"):
        assert backoff.delay(0, UpstreamError(kind, "x")) is None  # type: ignore[arg-type]
    assert backoff.delay(0, Refused("circuit_open", "open", retry_after=5)) is None


def test_a_429_waits_its_retry_after_only_when_short() -> None:
    backoff = Backoff(cap_s=2.0)
    assert backoff.delay(0, UpstreamError("rate_limited", "x", retry_after=1.5)) == 1.5
    assert backoff.delay(0, UpstreamError("rate_limited", "x", retry_after=30)) is None
    assert backoff.delay(0, UpstreamError("rate_limited", "x")) is None
