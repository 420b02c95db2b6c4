"""Scoring requests for the router, micro-batched.

The gateway takes any object with `score(items) -> array of p_strong` (the trained router, or a
test's fake). Scoring is CPU work, so it runs in a worker thread; requests that arrive while the
encoder is busy are scored together in the next batch, so the encoder runs once per batch and
throughput grows with load instead of queueing one request behind another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

Item = str | Sequence[dict[str, Any]]


class Scorer(Protocol):
    def score(self, items: Sequence[Item]) -> np.ndarray: ...


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
            except Exception as exc:  # the router failed: every waiting request hears why
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), p in zip(batch, scores, strict=True):
                if not future.done():
                    future.set_result(float(p))

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
