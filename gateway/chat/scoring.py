"""Scoring requests for the router, micro-batched, and what the gateway needs of a scorer.

The gateway takes any `Scorer`: the trained router (`router.Router`), a test's or a benchmark's
fake. The protocol carries everything the app calls: `score` (p_strong per item), a calibration
(`threshold_for_fraction`, for policies given as a target fraction) and `info` (for `/v1/models`).
Scoring is CPU work, so it runs in a worker thread; requests that arrive while the encoder is busy
are scored together in the next batch, so the encoder runs once per batch and throughput grows
with load instead of queueing one request behind another. A batch that fails is scored again item
by item: a request the router cannot score fails alone, never the others of its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from router import Item

log = logging.getLogger(__name__)


class Scorer(Protocol):
    def score(self, items: Sequence[Item]) -> np.ndarray:
        """p_strong in [0, 1] for each item, in order; one call per batch."""
        ...

    def threshold_for_fraction(self, fraction: float) -> float:
        """The score threshold that sends about `fraction` of typical traffic to the large tier."""
        ...

    @property
    def info(self) -> Mapping[str, Any]:
        """JSON-safe metadata shown in `/v1/models` (at least a `name`)."""
        ...


class BatchingScorer:
    """Collects concurrent `score` calls into batches of at most `max_batch` items."""

    def __init__(self, scorer: Scorer, max_batch: int = 32) -> None:
        self.scorer = scorer
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[float]]] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def score(self, item: Item) -> tuple[float, float]:
        """(p_strong, seconds this request waited for its score)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run(self._queue), name="router-batcher")
        started = time.perf_counter()
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        p = await future
        return p, time.perf_counter() - started

    async def _run(self, queue: asyncio.Queue[tuple[Item, asyncio.Future[float]]]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                scores = await asyncio.to_thread(self.scorer.score, [item for item, _ in batch])
            except Exception as failed:
                if len(batch) == 1:
                    _settle(batch[0][1], exc=failed)
                    continue
                # One item can fail a whole batch: score each on its own, so that only the
                # request the router cannot score fails, and every other one gets its score.
                log.warning("router failed on a batch of %d; scoring them one by one", len(batch))
                for item, future in batch:
                    try:
                        (p,) = await asyncio.to_thread(self.scorer.score, [item])
                    except Exception as exc:
                        _settle(future, exc=exc)
                    else:
                        _settle(future, float(p))
                continue
            for (_, future), p in zip(batch, scores, strict=True):
                _settle(future, float(p))

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None


def _settle(
    future: asyncio.Future[float], score: float = 0.0, *, exc: BaseException | None = None
) -> None:
    """Hand a waiting request its score, or its failure (unless it stopped waiting)."""
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(score)
