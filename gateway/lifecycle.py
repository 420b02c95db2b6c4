"""The process's lifecycle: whether it can serve (`/ready`), and its drain on SIGTERM.

`Readiness` is the one definition of ready: this process can serve a request now. Its config and
router are loaded (both load before the server listens, so a process that answers has them), its
request log directory is writable, and it is not draining. It asks nothing of upstreams: an
upstream outage hits every replica alike and must not take them all out of a load balancer
(upstream reachability and breakers are `GET /status`, `gateway.upstream.probes`).

`Drain` is the shutdown SIGTERM begins (`gateway.server`): `/ready` turns 503 at once, the server
stops accepting connections, a request that still arrives is answered 503 `shutting_down`, and
the requests in flight get `grace_s` (TIERGATE_DRAIN_GRACE_S) to finish. When the grace is over,
what still runs is told to stop: a stream ends with an SSE error event `shutting_down` and
`[DONE]`, a request still waiting for its upstream is answered 503 `shutting_down`. Either way the
request ends in its ledger, so the request log has its row before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from gateway.protocol.errors import GatewayError

log = logging.getLogger(__name__)


class ShuttingDown(GatewayError):
    """The gateway is draining: a request that arrived too late, or one the grace ran out on."""

    def __init__(self, message: str = "the gateway is shutting down; retry the request") -> None:
        super().__init__(
            503, message, code="shutting_down", headers={"retry-after": "1", "connection": "close"}
        )


class Drain:
    """One process's drain: `begin` once, then `expired` when its grace is over."""

    def __init__(self, grace_s: float = 30.0) -> None:
        self.grace_s = grace_s
        self.draining = False
        """True from `begin` on: /ready says 503 and new requests are refused."""
        self.expired = False
        """True once the grace is over: what still ran has been told to stop."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stoppers: set[Callable[[], None]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop that serves the app (the app's lifespan binds it at start)."""
        self._loop = loop

    def begin(self) -> None:
        """Start draining. Safe from any thread and from a signal handler; once only."""
        if self.draining:
            return
        self.draining = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._start_grace)

    @property
    def running(self) -> int:
        """Requests and streams that would be told to stop if the grace ended now."""
        return len(self._stoppers)

    def _start_grace(self) -> None:
        assert self._loop is not None
        log.info(
            "draining: /ready says 503; %d requests in flight have %gs to finish",
            self.running,
            self.grace_s,
        )
        self._loop.call_later(self.grace_s, self._expire)

    def _expire(self) -> None:
        self.expired = True
        if self._stoppers:
            log.warning("drain grace over: ending %d requests still running", self.running)
        for stop in list(self._stoppers):
            stop()

    def watch(self, stop: Callable[[], None]) -> Callable[[], None]:
        """Call `stop` (on the event loop) when the grace ends, at once if it already has.
        Returns what ends the watch; call it when the work is over."""
        if self.expired:
            stop()
            return _nothing
        self._stoppers.add(stop)
        return lambda: self._stoppers.discard(stop)

    def bounded(self) -> Bounded:
        """`async with drain.bounded():` the block is cut by `ShuttingDown` if the grace ends
        before it does."""
        return Bounded(self)


def _nothing() -> None:
    return None


class Bounded:
    """`Drain.bounded`'s block: an `asyncio.timeout` that the drain's end fires."""

    def __init__(self, drain: Drain) -> None:
        self._drain = drain
        self._timeout = asyncio.timeout(None)
        self._unwatch = _nothing

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()
        self._unwatch = self._drain.watch(self._fire)

    def _fire(self) -> None:
        self._timeout.reschedule(asyncio.get_running_loop().time())

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._unwatch()
        try:
            await self._timeout.__aexit__(kind, exc, tb)
        except TimeoutError:
            raise ShuttingDown(
                "the gateway shut down before an upstream answered; retry the request"
            ) from None


class Readiness:
    """`/ready`: whether this process can serve now, and if not, why (words, no internals)."""

    def __init__(self, drain: Drain, request_log_dir: Path | None) -> None:
        self._drain = drain
        self._log_dir = request_log_dir

    def check(self) -> tuple[bool, dict[str, Any]]:
        reasons = []
        if self._drain.draining:
            reasons.append("draining")
        if self._log_dir is not None and not os.access(self._log_dir, os.W_OK):
            reasons.append("request_log_not_writable")
        if reasons:
            return False, {"status": "not_ready", "reasons": reasons}
        return True, {"status": "ready"}
