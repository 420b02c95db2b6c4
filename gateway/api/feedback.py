"""`POST /v1/feedback`: a client's score for one of its own requests, kept for retraining.

The body names the request by `request_id` (the `x-request-id` the answer carried) or the stored
response by `response_id`, and gives `score`: a number in [0, 1] or `good` (1) / `bad` (0). Only
the key that made the request may score it (another key gets 404, as for a request that does not
exist). What is stored, and why, is `gateway.chat.learning`'s.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.api.body import BodyRoute
from gateway.api.chat import ERRORS
from gateway.deps import BodyCaller, DatabaseDep, LearningDep

router = APIRouter(route_class=BodyRoute)

SCORES = {"good": 1.0, "bad": 0.0}


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(None, min_length=1, max_length=200)
    response_id: str | None = Field(None, min_length=1, max_length=200)
    score: float | Literal["good", "bad"]
    """A number in [0, 1] (1: the answer was good), or `good` / `bad`."""

    @model_validator(mode="after")
    def _one_target_and_a_score_in_range(self) -> FeedbackRequest:
        if (self.request_id is None) == (self.response_id is None):
            raise ValueError("give exactly one of request_id and response_id")
        if isinstance(self.score, float) and not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score is {self.score}; give a number in [0, 1], 'good' or 'bad'")
        return self

    @property
    def value(self) -> float:
        return SCORES[self.score] if isinstance(self.score, str) else float(self.score)


class FeedbackReceipt(BaseModel):
    id: int
    object: Literal["feedback"] = "feedback"
    request_id: str | None
    response_id: str | None
    score: float


@router.post("/v1/feedback", responses=ERRORS)
async def feedback(
    body: FeedbackRequest, key: BodyCaller, learning: LearningDep, database: DatabaseDep
) -> FeedbackReceipt:
    """Score one of the calling key's requests (or stored responses) in [0, 1]."""
    feedback_id, request_id = await learning.feedback(
        database, key, body.value, request_id=body.request_id, response_id=body.response_id
    )
    return FeedbackReceipt(
        id=feedback_id, request_id=request_id, response_id=body.response_id, score=body.value
    )
