"""Learning from the gateway's own traffic: what happens after an answer, and with feedback.

`Learning.answered` runs once a routed request's answer reached the client (a JSON body sent, a
stream read to its end): the request is remembered for a while (`RecentAnswers`), so that feedback
can be stored with its features, and offered to the shadow judge (`gateway.chat.shadow`). Neither
happens to a request carrying personal data its policy protects (`pii: keep_local` or `redact`).

`Learning.feedback` is `POST /v1/feedback`: a score in [0, 1] for a request (or a stored response)
that the calling key made, stored beside its request-log row (`gateway.storage`), with an outcome
row carrying the request's embedding and answer features when this process still holds them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from gateway.access.keys import ApiKey
from gateway.access.request_limits import completion_budget
from gateway.chat.outcomes import Answered, OutcomeKeeper, RecentAnswers, clip
from gateway.chat.plan import Plan
from gateway.chat.shadow import ShadowJob, ShadowJudge
from gateway.chat.wire import upstream_call
from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import ChatCompletionRequest, RoutedRequest
from gateway.storage import Database, Feedback
from gateway.telemetry.quality import QualityMetrics
from gateway.telemetry.record import RequestRecord
from policies import TIERS, TierName, shadowed

ROW_WAIT_S = 2.0
"""How long feedback waits for its request's log row (rows are written in batches)."""


class Learning:
    def __init__(
        self,
        keeper: OutcomeKeeper,
        shadow: ShadowJudge | None,
        metrics: QualityMetrics | None,
        *,
        recent: RecentAnswers | None = None,
        reserve_tokens: int = 1024,
        tiers: Sequence[TierName] = TIERS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keeper = keeper
        self.shadow = shadow
        self._metrics = metrics
        self.recent = recent if recent is not None else RecentAnswers()
        self._reserve = reserve_tokens
        self._tiers = tuple(tiers)
        self._clock = clock

    def wants(self, plan: Plan) -> bool:
        """Whether a routed request's answer text is needed after it (to keep a stream's)."""
        if plan.policy is None or _private(plan):
            return False
        return self.keeper.enabled or plan.policy.spec.shadow is not None

    def answered(self, plan: Plan, request: RoutedRequest, rec: RequestRecord, text: str) -> None:
        """A routed request's answer reached the client whole."""
        if not self.wants(plan) or rec.status_code != 200 or rec.partial:
            return
        answered = Answered(
            request_id=rec.request_id,
            api_key_id=rec.api_key_id,
            policy=rec.policy,
            category=rec.category,
            tier=rec.served_tier,
            deployment=rec.deployment,
            items=request.routing_items(),
            answer=clip(text),
            at=self._clock(),
        )
        if self.keeper.enabled:
            self.recent.add(answered)
        spec = plan.policy.spec if plan.policy is not None else None
        if self.shadow is None or spec is None or spec.shadow is None:
            return
        served = plan.tier_of_name(rec.deployment)
        if not shadowed(spec, served, self._tiers, keep_local=_private(plan)):
            return
        endpoint: Literal["chat", "completions"] = (
            "chat" if isinstance(request, ChatCompletionRequest) else "completions"
        )
        job = ShadowJob(
            answered,
            upstream_call(endpoint, request),
            spec.shadow,
            request.prompt_chars(),
            completion_budget(request, self._reserve),
        )
        self.shadow.consider(job)

    async def feedback(
        self,
        database: Database | None,
        key: ApiKey | None,
        score: float,
        *,
        request_id: str | None,
        response_id: str | None,
    ) -> tuple[int, str | None]:
        """Store `key`'s score for one of its own requests (or stored responses): (the feedback
        row's id, the request's id). 404 for a request this key did not make."""
        if database is None:
            raise GatewayError(
                503,
                "feedback is kept in the request log's database, which is off on this gateway",
                code="feedback_unavailable",
            )
        key_id = key.id if key is not None else None
        if response_id is not None:
            stored = await database.get_response(response_id, key_id)
            if stored is None:
                raise _not_found("response_id", response_id)
            request_id = stored.request_id
        row = await self._request_row(database, request_id) if request_id is not None else None
        if response_id is None and (row is None or row.get("api_key_id") != key_id):
            raise _not_found("request_id", request_id)
        now = self._clock()
        feedback_id = await database.add_feedback(
            Feedback(key_id, score, now, request_id=request_id, response_id=response_id)
        )
        row = row or {}
        if self._metrics is not None:
            self._metrics.feedback_given(
                row.get("policy"), row.get("category"), row.get("served_tier"), score
            )
        answered = self.recent.get(request_id) if request_id is not None else None
        if answered is not None and self.keeper.enabled:
            tier = answered.tier
            capable = tier == self._tiers[-1]
            await self.keeper.keep(
                answered,
                "feedback",
                score,
                weak_tier=None if capable else tier,
                strong_tier=tier if capable else None,
                weak_deployment=None if capable else answered.deployment,
                strong_deployment=answered.deployment if capable else None,
            )
        return feedback_id, request_id

    async def _request_row(self, database: Database, request_id: str) -> dict[str, Any] | None:
        """The request's log row, waiting a little for a row still in the writer's batch."""
        deadline = self._clock() + ROW_WAIT_S
        while True:
            rows = await database.find_requests(request_id)
            if rows:
                return rows[-1]
            if self._clock() >= deadline:
                return None
            await asyncio.sleep(0.1)

    async def aclose(self) -> None:
        if self.shadow is not None:
            await self.shadow.aclose()


def _not_found(field: str, value: str | None) -> GatewayError:
    return GatewayError(
        404,
        f"{field} {value!r} names no request made with this API key (feedback is accepted only "
        "from the key that made the request)",
        code="not_found",
        param=field,
    )


def _private(plan: Plan) -> bool:
    """The request carries personal data its policy protects (the `pii` rule: kept on local
    deployments, or redacted for the others): nothing of it is kept, and it is never shadowed,
    since shadowing sends the request as it came to the most capable tier and the judge."""
    decision = plan.decision
    return decision is not None and (decision.keep_local or decision.redact)
