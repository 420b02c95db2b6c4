"""Swapping in retrained artifacts without a restart and without dropping requests.

`tiergate router train --from-log` (and `train-verifier --from-log`) write new artifacts; the
operator points the gateway at them (`TIERGATE_ROUTER_ARTIFACT`, a policy's `escalate.verifier`
directory) and asks for a reload: `POST /admin/router/reload` (an admin key) or `SIGHUP`.

`Reloader.reload` re-reads the artifacts in this process, in a worker thread, and builds a new
`router.Router` on the encoder already loaded (no second MiniLM, no model load on the request
path). Then it swaps references: the micro-batcher scores its next batch with the new router while
a batch in flight finishes with the old one; policies given as a target fraction get thresholds
from the new calibration; the catalogue, the verifiers and the outcome keeper follow. A bad
artifact is refused (the error says why) and the old one stays.

Every worker process, and every replica: each gateway watches a reload *generation*, a counter in
Redis when the config has one (replicas share it) or else a file beside the request log (workers
of one machine share it). `reload_everywhere` reloads here, then bumps the generation; every other
process sees it change within `TIERGATE_RELOAD_POLL_S` and reloads too. `SIGHUP` sent to one
process does the same; sent to uvicorn's supervisor of several workers, uvicorn replaces the
workers one by one (each new one loads the artifacts at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from gateway.access.counters import CounterStore
from gateway.chat.escalation import DEFAULT_VERIFIER, Escalation
from gateway.chat.outcomes import OutcomeKeeper
from gateway.chat.scoring import BatchingScorer, Scorer
from gateway.config import GatewayConfig
from gateway.protocol.errors import GatewayError
from policies import Policy, build_policies
from router import Router, RouterError

log = logging.getLogger(__name__)

GENERATION_KEY = "router:generation"
GENERATION_TTL_S = 10 * 365 * 86400


class Generation(Protocol):
    """A counter every gateway process can read and bump."""

    async def current(self) -> int: ...

    async def bump(self) -> int: ...


class StoreGeneration:
    """The generation in the counter store (Redis: shared by every replica)."""

    def __init__(self, store: CounterStore) -> None:
        self._store = store

    async def current(self) -> int:
        return await self._store.get(GENERATION_KEY)

    async def bump(self) -> int:
        return await self._store.adjust(GENERATION_KEY, 1, GENERATION_TTL_S)


class FileGeneration:
    """The generation in a file (shared by the workers of one machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def current(self) -> int:
        return await asyncio.to_thread(self._read)

    def _read(self) -> int:
        try:
            return int(self.path.read_text("utf-8").strip() or 0)
        except (OSError, ValueError):
            return 0

    async def bump(self) -> int:
        return await asyncio.to_thread(self._bump)

    def _bump(self) -> int:
        value = self._read() + 1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".generation-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"{value}\n")
        os.replace(tmp, self.path)
        return value


ScorerLoader = Callable[[Scorer], Scorer]
"""Builds the new router from the current one (the default re-reads its artifact directory)."""


class Reloader:
    def __init__(
        self,
        config: GatewayConfig,
        scorer: Scorer,
        policies: Mapping[str, Policy],
        escalation: Escalation,
        keeper: OutcomeKeeper,
        *,
        artifact_dir: Path | None,
        cache_size: int,
        load: ScorerLoader | None = None,
    ) -> None:
        self._config = config
        self.scorer = scorer
        self.policies = dict(policies)
        self._escalation = escalation
        self._keeper = keeper
        self._artifact_dir = artifact_dir
        self._cache_size = cache_size
        self._load = load or self._load_router
        self._batcher: BatchingScorer | None = None
        self._planner: Any = None
        self._generation: Generation | None = None
        self._seen = 0
        self._lock = asyncio.Lock()
        self.reloads = 0

    def attach(self, batcher: BatchingScorer, planner: Any, generation: Generation) -> None:
        """What to swap the router into (the lifespan builds them), and the shared generation."""
        self._batcher, self._planner, self._generation = batcher, planner, generation

    async def start(self) -> None:
        """Remember the generation as it is now: only later bumps reload."""
        if self._generation is not None:
            with contextlib.suppress(Exception):
                self._seen = await self._generation.current()

    async def reload(self) -> dict[str, Any]:
        """Re-read the artifacts and swap them in, in this process. GatewayError (400) naming
        the artifact when one is refused: then nothing changed."""
        async with self._lock:
            try:
                scorer = await asyncio.to_thread(self._load, self.scorer)
                verifiers = await asyncio.to_thread(self._load_verifiers)
                policies = build_policies(
                    self._config.policies, self._config.tier_facts(), scorer.threshold_for_fraction
                )
            except (RouterError, ValueError) as exc:
                message = f"the new artifacts were refused, the old ones stay: {exc}"
                raise GatewayError(400, message, code="bad_artifact") from None
            self.scorer, self.policies = scorer, policies
            if self._batcher is not None:
                self._batcher.scorer = scorer
            if self._planner is not None:
                self._planner.use_policies(policies)
            self._escalation.verifiers.update(verifiers)
            self._keeper.router = scorer
            if verifiers and self._keeper.verifier is not None:
                self._keeper.verifier = next(iter(self._escalation.verifiers.values()))
            self.reloads += 1
            log.info("router reloaded: %s", dict(scorer.info).get("name"))
            return {"router": dict(scorer.info), "verifiers": sorted(verifiers)}

    async def reload_everywhere(self) -> dict[str, Any]:
        """Reload here, then bump the generation so that every other process reloads."""
        result = await self.reload()
        if self._generation is not None:
            try:
                self._seen = await self._generation.bump()
                result["generation"] = self._seen
            except Exception as exc:  # this process has the new artifacts; say the rest may not
                log.warning("reload generation not bumped (%s): other workers keep theirs", exc)
                result["generation"] = None
        return result

    async def watch(self, every_s: float) -> None:
        """Reload whenever another process bumped the generation (runs for the app's life)."""
        assert self._generation is not None
        while True:
            await asyncio.sleep(every_s)
            try:
                current = await self._generation.current()
                if current != self._seen:
                    self._seen = current
                    await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reload from the generation failed (%s); still serving the old", exc)

    def _load_router(self, current: Scorer) -> Scorer:
        """A new Router from the artifact directory, on the current router's encoder."""
        from router.artifact import load_artifact
        from router.model import default_artifact_dir

        if not isinstance(current, Router):
            raise RouterError(f"the router {dict(current.info).get('name')!r} cannot be reloaded")
        directory = self._artifact_dir or default_artifact_dir()
        return Router(load_artifact(directory), current.encoder, self._cache_size)

    def _load_verifiers(self) -> dict[str, Any]:
        """Every verifier loaded from an artifact, read again (a test's fakes stay)."""
        from router import Verifier, load_verifier

        fresh: dict[str, Any] = {}
        for name, verifier in self._escalation.verifiers.items():
            if isinstance(verifier, Verifier):
                directory = None if name == DEFAULT_VERIFIER else Path(name).expanduser()
                fresh[name] = load_verifier(directory, encoder=verifier.encoder)
        return fresh
