"""What retraining keeps from a request: its routed text's embedding and its answer's features.

The request log holds no prompt or answer text. Retraining the router and the verifier on the
gateway's own traffic (`tiergate router train --from-log`, `train-verifier --from-log`) needs, for
the requests that earned a verdict (a shadow judge's, a client's feedback), what those models read:

- `embedding`: the MiniLM vector of the routed text as the router embeds it (its last user turn,
  at the artifact's word-piece limit), float32 bytes; `embedding_model` names encoder and limit, so
  training refuses vectors from another encoder;
- `features`: the answer's verifier features (the running verifier's feature set, its columns'
  values), and the answer's length;
- `content` (prompt and answer text) only when the operator opts in (`TIERGATE_OUTCOME_CONTENT`);
- `expires_at`: every row is deleted after the retention period (`TIERGATE_OUTCOME_RETENTION_DAYS`,
  by the database's hourly purge).

Feedback arrives after the answer, maybe minutes later: `RecentAnswers` keeps the last answered
requests of this process in memory (bounded in count and age, never on disk) so that feedback
can be stored with the same features. Feedback for a request this process no longer holds (or
another worker served) is stored without them. Requests whose personal data must stay local are
not kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.storage import Database, Outcome
from gateway.storage.records import OutcomeKind
from router import Item, Router, Verifier
from router.conversation import last_user_text, to_conversation
from router.vectors import embedding_id, to_bytes
from router.verifier_features import featurize_answers

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 16_000
"""Of an answer kept in memory: the verifier reads at most its first 256 word pieces and cheap
features of the whole; 16,000 characters bounds the memory one request can take."""


@dataclass(frozen=True)
class Answered:
    """One answered routed request, as learning needs it."""

    request_id: str
    api_key_id: str | None
    policy: str | None
    category: str | None
    tier: str | None
    """The tier that served the answer."""
    deployment: str | None
    items: Item
    """What the router scored (a prompt or a messages list)."""
    answer: str
    at: float


class RecentAnswers:
    """The last `size` answered requests of this process, for at most `max_age_s` seconds."""

    def __init__(
        self, size: int = 1024, max_age_s: float = 3600.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.size = size
        self.max_age_s = max_age_s
        self._clock = clock
        self._items: OrderedDict[str, Answered] = OrderedDict()

    def add(self, answered: Answered) -> None:
        if self.size <= 0:
            return
        self._items[answered.request_id] = answered
        self._items.move_to_end(answered.request_id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def get(self, request_id: str) -> Answered | None:
        answered = self._items.get(request_id)
        if answered is None or self._clock() - answered.at > self.max_age_s:
            return None
        return answered


class OutcomeKeeper:
    """Writes outcome rows with what retraining needs. Built once per app; `router` may be swapped
    by a reload. Without a trained router (a test's fake scorer) rows carry no embedding."""

    def __init__(
        self,
        database: Database | None,
        router: object,
        verifier: object | None,
        *,
        retention_s: float | None,
        keep_content: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.router = router
        self.verifier = verifier
        self.retention_s = retention_s
        self.keep_content = keep_content
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.database is not None

    async def keep(
        self,
        answered: Answered,
        kind: OutcomeKind,
        verdict: float | None,
        **fields: Any,
    ) -> int | None:
        """Store one outcome of `answered` (`fields`: the `Outcome`'s tier pair, judge ...); the
        row's id, or None without a database. Raises what the database raises."""
        if self.database is None:
            return None
        embedding, model, features = await asyncio.to_thread(self.describe, answered)
        now = self._clock()
        content = None
        if self.keep_content:
            content = {"request": answered.items, "answer": answered.answer}
            content.update(fields.pop("content", None) or {})
        else:
            fields.pop("content", None)
        outcome = Outcome(
            request_id=answered.request_id,
            kind=kind,
            created_at=now,
            expires_at=None if self.retention_s is None else now + self.retention_s,
            api_key_id=answered.api_key_id,
            policy=answered.policy,
            category=answered.category,
            verdict=verdict,
            embedding=embedding,
            embedding_model=model,
            features=features,
            content=content,
            **fields,
        )
        return await self.database.add_outcome(outcome)

    def describe(self, answered: Answered) -> tuple[bytes | None, str | None, dict[str, Any]]:
        """(embedding bytes, embedding model, features) of an answered request (CPU work: run
        it in a worker thread)."""
        features: dict[str, Any] = {"answer_chars": len(answered.answer)}
        router = self.router
        if not isinstance(router, Router):
            return None, None, features
        conversation = to_conversation(answered.items)
        max_length = router.artifact.encoder_max_length
        vector = router.encoder.encode([last_user_text(conversation)], max_length=max_length)[0]
        model = embedding_id(router.encoder.name, max_length)
        verifier = self.verifier
        if isinstance(verifier, Verifier):
            names = list(verifier.artifact.features)
            limit = verifier.artifact.encoder_max_length

            def encode(texts: Any) -> np.ndarray:
                assert isinstance(verifier, Verifier)
                return verifier.encoder.encode(texts, max_length=limit)

            row = featurize_answers([conversation], [answered.answer], names, encode)[0]
            features["verifier"] = {
                "features": names,
                "encoder": verifier.encoder.name,
                "max_length": limit,
                "values": [float(v) for v in row],
            }
        return to_bytes(vector), model, features


def clip(text: str) -> str:
    return text[:MAX_TEXT_CHARS]
