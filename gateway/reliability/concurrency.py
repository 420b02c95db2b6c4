"""Per-deployment concurrency: the in-flight count, at most `max_concurrency`, a bounded queue.

A deployment (a vLLM server on one GPU, a provider account with a concurrency cap) serves best
when it is not flooded. Requests past the limit wait in a queue of at most `max_queue`, each for at
most `queue_timeout_s`; a request that finds the queue full, or waits too long, is refused with
`Refused("at_capacity")`, which the service treats like any unavailable deployment: the next one in
the fallback order is tried, and if none is left the client gets 503 with `Retry-After`.

This module is the one owner of a deployment's in-flight count: a request holds a `Slot` from just
before its first attempt until its answer, or its stream, ends (deployments without a limit count
too). The balancer's least-in-flight strategy reads these counts. The gauge
`tiergate_requests_in_flight` is another concept: requests the gateway accepted and has not
finished, whichever deployment (if any) they reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

from gateway.config import Deployment
from gateway.upstream.base import Refused


class Slot:
    """One request's hold on one deployment. `release` gives it back; calling it again is a no-op,
    so every path that ends a request may call it without counting twice."""

    def __init__(self, slots: Slots) -> None:
        self._slots: Slots | None = slots

    def release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots._give_back()


class Slots:
    """One deployment's slots: its in-flight count, its limit and its queue."""

    def __init__(self, name: str, limit: int | None, max_queue: int, timeout_s: float) -> None:
        self.name = name
        self.limit = limit
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self._sem = asyncio.Semaphore(limit) if limit is not None else None
        self.in_flight = 0
        """Requests holding a slot now."""
        self.waiting = 0
        self.refused = 0

    async def acquire(self) -> Slot:
        """A slot, or `Refused`; release the slot once the request is over."""
        sem = self._sem
        if sem is not None:
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
        self.in_flight += 1
        return Slot(self)

    def _give_back(self) -> None:
        self.in_flight -= 1
        if self._sem is not None:
            self._sem.release()


class Concurrency:
    """Every deployment's `Slots`, by name, built once from the config."""

    def __init__(self, deployments: Mapping[str, Deployment]) -> None:
        self._slots = {
            name: Slots(name, d.max_concurrency, d.max_queue, d.queue_timeout_s)
            for name, d in deployments.items()
        }

    def __getitem__(self, name: str) -> Slots:
        return self._slots[name]

    def __iter__(self) -> Iterator[Slots]:
        return iter(self._slots.values())

    def in_flight(self, name: str) -> int:
        """Requests deployment `name` has in flight now (0 for a name it does not know)."""
        slots = self._slots.get(name)
        return slots.in_flight if slots is not None else 0
