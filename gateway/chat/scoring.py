"""Scoring requests for the router, micro-batched, and what the gateway needs of a scorer.

The gateway takes any `Scorer`: the trained router (`router.Router`), a test's or a benchmark's
fake. The protocol carries everything the app calls: `score` (p_strong per item), a calibration
(`threshold_for_fraction`, for policies given as a target fraction) and `info` (for `/v1/models`).
With operator routes, a `Classifier` (the fitted `router.Routes`, or a fake) names each request's
route too: when both are the router's own, a batch is embedded once (`Router.embed`) and the
vectors feed both the score and the classifier, so routes add a matrix product, not an encoder run.
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
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gateway.config import ConfigError, GatewayConfig
from router import Item, RouteMatch, Router, Routes

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


class Classifier(Protocol):
    """Names each request's operator route (`router.Routes`, or a test's fake)."""

    @property
    def names(self) -> list[str]:
        """The routes it knows, in order."""
        ...

    def classify(self, items: Sequence[Item]) -> list[RouteMatch]:
        """One match per item; `category` None when no route reached the confidence."""
        ...


@dataclass(frozen=True)
class Scored:
    """One request's score, its route (None: no routes configured) and how long it waited."""

    p_strong: float
    match: RouteMatch | None
    seconds: float


def score_batch(
    scorer: Scorer, classifier: Classifier | None, items: Sequence[Item]
) -> tuple[np.ndarray, list[RouteMatch] | None]:
    """p_strong and route matches for a batch: one encoder run when both are the router's."""
    if classifier is None:
        return scorer.score(items), None
    if isinstance(scorer, Router) and isinstance(classifier, Routes):
        embedded = scorer.embed(items)
        return scorer.score_embedded(embedded), classifier.classify_embedded(embedded.vectors)
    return scorer.score(items), classifier.classify(items)


def load_classifier(config: GatewayConfig, scorer: Scorer) -> Classifier | None:
    """The operator-route classifier of `config.routes` (None: no routes), on the trained
    router's own encoder and word-piece limit so that a request is embedded once. Read from its
    cache by content hash, or fitted here (seconds) and cached (`router.routes`)."""
    if not config.routes:
        return None
    from router import load_routes

    if not isinstance(scorer, Router):
        raise ConfigError(
            f"{len(config.routes)} routes are configured, but the scorer "
            f"{dict(scorer.info).get('name')!r} has no encoder to classify them with; use the "
            "trained router or pass a classifier"
        )
    return load_routes(
        config.route_specs(),
        scorer.encoder,
        max_length=scorer.artifact.encoder_max_length,
        confidence=config.route_confidence,
    )


_Waiting = tuple[Item, "asyncio.Future[tuple[float, RouteMatch | None]]"]


class BatchingScorer:
    """Collects concurrent `score` calls into batches of at most `max_batch` items."""

    def __init__(
        self, scorer: Scorer, max_batch: int = 32, classifier: Classifier | None = None
    ) -> None:
        self.scorer = scorer
        self.classifier = classifier
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Waiting] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def score(self, item: Item) -> Scored:
        """The request's score and route, and the seconds it waited for them."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run(self._queue), name="router-batcher")
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[float, RouteMatch | None]] = loop.create_future()
        await self._queue.put((item, future))
        p, match = await future
        return Scored(p, match, time.perf_counter() - started)

    async def _run(self, queue: asyncio.Queue[_Waiting]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            items = [item for item, _ in batch]
            try:
                scores, matches = await asyncio.to_thread(
                    score_batch, self.scorer, self.classifier, items
                )
            except Exception as failed:
                if len(batch) == 1:
                    _settle(batch[0][1], exc=failed)
                    continue
                # One item can fail a whole batch: score each on its own, so that only the
                # request the router cannot score fails, and every other one gets its score.
                log.warning("router failed on a batch of %d; scoring them one by one", len(batch))
                for item, future in batch:
                    try:
                        (p,), match = await asyncio.to_thread(
                            score_batch, self.scorer, self.classifier, [item]
                        )
                    except Exception as exc:
                        _settle(future, exc=exc)
                    else:
                        _settle(future, (float(p), match[0] if match else None))
                continue
            for index, ((_, future), p) in enumerate(zip(batch, scores, strict=True)):
                _settle(future, (float(p), matches[index] if matches else None))

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None


def _settle(
    future: asyncio.Future[tuple[float, RouteMatch | None]],
    result: tuple[float, RouteMatch | None] = (0.0, None),
    *,
    exc: BaseException | None = None,
) -> None:
    """Hand a waiting request its score and route match, or its failure (unless it stopped
    waiting)."""
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
