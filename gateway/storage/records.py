"""The rows the gateway keeps besides the request log, as the code sees them.

`StoredResponse` is the Responses API's stored response (issue 14), `Feedback` a client's score
for one of its requests, `Outcome` what retraining needs from one request (issue 15). JSON fields
hold plain Python values (dicts, lists, strings, numbers); the store encodes them (TEXT in SQLite,
JSONB in Postgres) and hands back equal values. Times are unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

OutcomeKind = Literal["shadow", "feedback", "escalation"]


@dataclass(frozen=True)
class StoredResponse:
    id: str
    api_key_id: str | None
    """The key that created it; only that key may read or delete it (None: no keys configured)."""
    created_at: float
    expires_at: float | None
    """Not served after this time, deleted by `purge_expired` (None: kept until deleted)."""
    input_items: list[Any]
    output_items: list[Any]
    deployment: str | None = None
    request_id: str | None = None
    previous_response_id: str | None = None
    response: dict[str, Any] | None = None
    """The whole response object as the client received it, for `GET /v1/responses/{id}`."""


@dataclass(frozen=True)
class Feedback:
    api_key_id: str | None
    score: float
    """In [0, 1]; 1 is good (the API maps "good"/"bad" to 1/0)."""
    created_at: float
    request_id: str | None = None
    response_id: str | None = None
    id: int | None = None
    """Assigned by the database."""


@dataclass(frozen=True)
class Outcome:
    request_id: str
    kind: OutcomeKind
    created_at: float
    expires_at: float | None = None
    api_key_id: str | None = None
    policy: str | None = None
    category: str | None = None
    weak_tier: str | None = None
    strong_tier: str | None = None
    weak_deployment: str | None = None
    strong_deployment: str | None = None
    judge: str | None = None
    verdict: float | None = None
    """1.0: the weaker tier's answer was good enough; 0.0: it was not; between: a judge's share."""
    embedding: bytes | None = None
    """The routed text's embedding as float32 little-endian bytes (`numpy.tobytes()`)."""
    embedding_model: str | None = None
    features: dict[str, Any] | None = None
    content: dict[str, Any] | None = None
    """Prompt and answers as text: only when the operator opted in to keeping text."""
    id: int | None = None
    """Assigned by the database."""
