"""Circuit breakers: one per deployment, so a dead upstream costs clients nothing but a skip.

A breaker is `closed` while its deployment answers. When `failures` attempts fail inside
`window_s` it opens: for `cooldown_s` the service skips the deployment at once (the next one in the
fallback order answers) instead of paying a connect error or a timeout per request. After the
cooldown it is `half_open`: exactly one probe request goes through; its success closes the circuit,
its failure opens it for another cooldown. Only failures that say the deployment is unwell count
(refused connections, timeouts, 5xx, garbage: `counts` in `gateway.upstream.base.ERROR_KINDS`); a
4xx or a 429 says the request or the quota is at fault, not the deployment.

State lives in this process: each replica learns for itself that an upstream is down, which costs
at most `failures` requests per replica and needs no shared store.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Literal

from gateway.config import Deployment
from gateway.upstream.base import Refused, UpstreamError

State = Literal["closed", "open", "half_open"]
STATES: tuple[State, ...] = ("closed", "open", "half_open")

log = logging.getLogger(__name__)

class Breaker:
    def __init__(
        self,
        failures: int,
        window_s: float,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        self.name = name
        self.failures = failures
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._recent: deque[float] = deque(maxlen=failures)
        self._opened_at: float | None = None
        self._probe_at: float | None = None
        self.opened = 0
        """How many times this circuit has opened (for metrics)."""

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self.cooldown_s:
            return "open"
        return "half_open"

    def retry_after(self) -> float:
        """Seconds until the circuit lets a probe through (0 when it would now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.cooldown_s - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """May a request go to this deployment now? In half-open state, True once per probe:
        a probe that never reports back (its client went away) is forgotten after a cooldown."""
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        now = self._clock()
        if self._probe_at is not None and now - self._probe_at < self.cooldown_s:
            return False
        self._probe_at = now
        return True

    def success(self) -> None:
        if self._opened_at is not None:
            log.warning("%s: probe succeeded; circuit closed", self.name)
        self._opened_at = self._probe_at = None
        self._recent.clear()

    def failure(self, error: UpstreamError) -> None:
        if not error.counts:
            return
        now = self._clock()
        if self._opened_at is not None:
            # A failed probe (or a late failure from before the circuit opened): another cooldown.
            if self._probe_at is not None:
                self._opened_at, self._probe_at = now, None
                self.opened += 1
                log.warning("%s: probe failed (%s); circuit open again", self.name, error.kind)
            return
        self._recent.append(now)
        if len(self._recent) == self.failures and now - self._recent[0] <= self.window_s:
            self._opened_at = now
            self.opened += 1
            self._recent.clear()
            log.warning(
                "%s: %d failures within %gs (last: %s); circuit open for %gs",
                self.name,
                self.failures,
                self.window_s,
                error.kind,
                self.cooldown_s,
            )

    def check(self, name: str) -> None:
        """Raise `Refused` unless a request may go to deployment `name` now."""
        if not self.allow():
            wait = self.retry_after()
            raise Refused(
                "circuit_open",
                f"{name} failed {self.failures} times within {self.window_s:g}s; "
                f"skipped for {wait:.1f}s more",
                retry_after=max(wait, 1.0),
            )


class Breakers:
    """Every deployment's breaker, by name, built once from the config."""

    def __init__(
        self, deployments: Mapping[str, Deployment], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._breakers = {
            name: Breaker(d.breaker.failures, d.breaker.window_s, d.breaker.cooldown_s, clock, name)
            for name, d in deployments.items()
        }

    def __getitem__(self, name: str) -> Breaker:
        return self._breakers[name]

    def __iter__(self) -> Iterator[Breaker]:
        return iter(self._breakers.values())

    def states(self) -> dict[str, State]:
        """Each deployment's circuit now: `closed`, `open` or `half_open`."""
        return {name: b.state for name, b in self._breakers.items()}
