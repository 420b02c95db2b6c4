"""Per-deployment concurrency: at most `max_concurrency` requests in flight, a bounded queue.

A deployment (a vLLM server on one GPU, a provider account with a concurrency cap) serves best
when it is not flooded. Requests past the limit wait in a queue of at most `max_queue`, each for at
most `queue_timeout_s`; a request that finds the queue full, or waits too long, is refused with
`Refused("at_capacity")`, which the service treats like any unavailable deployment: the next one in
the fallback order is tried, and if none is left the client gets 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from gateway.config import Deployment
from gateway.upstream.base import Refused


class Slots:
    def __init__(self, name: str, limit: int | None, max_queue: int, timeout_s: float) -> None:
        self.name = name
        self.limit = limit
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self._sem = asyncio.Semaphore(limit) if limit is not None else None
        self.waiting = 0
        self.refused = 0

    async def acquire(self) -> None:
        """Take a slot or raise `Refused`; pair every successful call with one `release()`."""
        sem = self._sem
        if sem is None:
            return
        if sem.locked() and self.waiting >= self.max_queue:
            self.refused += 1
            raise Refused(
                "at_capacity",
                f"{self.name} has {self.limit} requests in flight and {self.waiting} queued",
                retry_after=1.0,
            )
        self.waiting += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                await sem.acquire()
        except TimeoutError:
            self.refused += 1
            raise Refused(
                "at_capacity",
                f"{self.name} had no free slot within {self.timeout_s:g}s",
                retry_after=max(1.0, self.timeout_s),
            ) from None
        finally:
            self.waiting -= 1

    def release(self) -> None:
        if self._sem is not None:
            self._sem.release()


def build_slots(deployments: Mapping[str, Deployment]) -> dict[str, Slots]:
    return {
        name: Slots(name, d.max_concurrency, d.max_queue, d.queue_timeout_s)
        for name, d in deployments.items()
    }
