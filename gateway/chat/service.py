"""The chat service: one request from model name to answer. Orchestration only.

`ChatService.handle` checks the request's size, opens its ledger, plans it (`gateway.chat.plan`:
resolve, authorize, score and decide, admit against the key's limits), then walks its candidates
(`gateway.chat.attempt`) until one answers: a JSON body, or a stream whose first chunk has arrived
and whose lease (`gateway.chat.stream`) ends it. Fallback only happens before the first byte reaches
the client; after that the answer belongs to the deployment that started it. Every accepted request
ends in exactly one `RequestRecord`, whatever happened, written by its ledger
(`gateway.chat.ledger`). What depends on the client's dialect (the call each deployment gets, the
answer's shape, the stream's events) is its `Wire` (`gateway.chat.wire`): chat and text completions
as they came, or the Responses API translated (`gateway.chat.responses`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.access.allowance import StreamAllowance
from gateway.access.keys import ApiKey
from gateway.access.quota import Quota
from gateway.access.request_limits import check_request
from gateway.chat.attempt import Attempts, Exhausted, fallback_header
from gateway.chat.ledger import Failures, Ledger
from gateway.chat.plan import Plan, Planner
from gateway.chat.stream import StreamLease, StreamRelay
from gateway.chat.wire import ChatWire, Wire, capped
from gateway.config import GatewayConfig
from gateway.lifecycle import Drain, ShuttingDown
from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import JSON, RoutedRequest
from gateway.telemetry.record import RequestRecord, Telemetry
from gateway.telemetry.tokens import reservation_estimate
from gateway.upstream.base import Backend, Target, UpstreamCall


@dataclass
class Outcome:
    """What the route turns into a response: a JSON body or a stream, plus headers."""

    headers: dict[str, str]
    body: JSON | None = None
    stream: StreamLease | None = None
    """For a stream: the route must call `stream.close()` after the response, however it went."""


class ChatService:
    def __init__(
        self,
        config: GatewayConfig,
        planner: Planner,
        attempts: Attempts,
        quota: Quota,
        sinks: Sequence[Telemetry],
        drain: Drain | None = None,
    ) -> None:
        self._config = config
        self._drain = drain if drain is not None else Drain()
        self._planner = planner
        self._attempts = attempts
        self._quota = quota
        self._sinks = list(sinks)
        most_capable = config.tiers[config.tier_order()[-1]].deployments[0]
        self._large_price = config.deployments[most_capable].price

    async def handle(
        self,
        endpoint: Literal["chat", "completions"],
        request: RoutedRequest,
        headers: Mapping[str, str],
        key: ApiKey | None = None,
        *,
        wire: Wire | None = None,
    ) -> Outcome:
        """`key` is the caller's, already authenticated (None when the gateway is open). `wire`:
        how another dialect (the Responses API, `gateway.chat.responses`) reaches deployments and
        comes back, for a `request` translated to chat completions; default: `endpoint` as it
        came."""
        if self._drain.draining:  # not accepted: no record, the client retries elsewhere
            raise ShuttingDown()
        wire = wire if wire is not None else ChatWire(endpoint, request)
        limits = self._config.limits
        check_request(request, max_messages=limits.max_messages, max_tokens=limits.max_tokens)
        ledger = Ledger(
            self._sinks,
            self._quota,
            self._large_price,
            request_id=headers.get("x-request-id"),
            endpoint=wire.endpoint,
            api_key_id=key.id if key is not None else None,
            stream=bool(request.stream),
        )
        try:
            plan = await self._planner.plan(request, headers, key, ledger, wire.needs)
            await self._planner.admit(plan, request, key, ledger)
            wire = await self._planner.private(plan, wire)
            if request.stream:
                return await self._stream(plan, wire, request.prompt_chars(), ledger)
            return await self._complete(plan, wire, ledger)
        except GatewayError as exc:
            if isinstance(exc, Exhausted):
                ledger.exhausted(exc.failures)
            ledger.failed(exc)
            ledger.finish()
            exc.headers.setdefault("x-request-id", ledger.request_id)
            if ledger.record.decision_reason is not None:
                exc.headers.setdefault("x-tiergate-reason", ledger.record.decision_reason)
            raise
        except asyncio.CancelledError:  # the server is going away with the request unanswered
            ledger.aborted()
            ledger.finish()
            raise
        except Exception:  # a bug of ours: still one record, and the envelope handler answers 500
            ledger.crashed()
            ledger.finish()
            raise

    async def _complete(self, plan: Plan, wire: Wire, ledger: Ledger) -> Outcome:
        def call_for(target: Target) -> UpstreamCall:
            return capped(wire.call(target), plan.completion_cap)

        async with self._drain.bounded():
            answer = await self._attempts.complete(plan.candidates, plan.ticket, call_for)
        target = answer.target
        body, (prompt, completion, estimated) = wire.answer(target, answer.body)
        ledger.served(target.name, plan.tier(target), answer.failures)
        ledger.upstream(answer.upstream_s)
        ledger.usage(target.deployment.price, prompt, completion, estimated=estimated)
        ledger.finish()
        headers = response_headers(ledger.record, answer.failures, plan)
        headers["x-tiergate-cost-usd"] = f"{ledger.record.cost_usd:.10f}"
        return Outcome(headers, body=body)

    async def _stream(self, plan: Plan, wire: Wire, prompt_chars: int, ledger: Ledger) -> Outcome:
        def relay_for(target: Target, backend: Backend) -> StreamRelay:
            allowance = StreamAllowance.of(
                self._quota,
                plan.ticket,
                target.deployment.price,
                prompt_tokens=reservation_estimate(prompt_chars),
                block=plan.completion_cap or self._config.limits.reserve_completion_tokens,
            )
            call = capped(wire.call(target), plan.completion_cap)
            chunks = backend.stream(target, call)
            return wire.relay(target, chunks, allowance=allowance, drain=self._drain)

        async with self._drain.bounded():
            opened = await self._attempts.open_stream(plan.candidates, plan.ticket, relay_for)
        target = opened.target
        ledger.first_byte()
        ledger.served(target.name, plan.tier(target), opened.failures)
        lease = StreamLease(
            opened.relay,
            slot=opened.slot,
            breaker=opened.breaker,
            ledger=ledger,
            price=target.deployment.price,
            upstream_started=opened.started,
        )
        return Outcome(response_headers(ledger.record, opened.failures, plan), stream=lease)


def response_headers(rec: RequestRecord, failures: Failures, plan: Plan) -> dict[str, str]:
    """The routing headers of an answer: where it went, why, and what was tried before."""
    headers = {
        "x-request-id": rec.request_id,
        "x-tiergate-route": rec.served_tier or "",
        "x-tiergate-deployment": rec.deployment or "",
    }
    if rec.decision_reason is not None:
        headers["x-tiergate-reason"] = rec.decision_reason
    if rec.category is not None:
        headers["x-tiergate-category"] = rec.category
    if rec.policy is not None:
        headers["x-tiergate-policy"] = rec.policy
    if rec.p_strong is not None:
        headers["x-tiergate-score"] = f"{rec.p_strong:.4f}"
    if failures:
        headers["x-tiergate-fallback"] = fallback_header(failures)
    if plan.ticket is not None and plan.ticket.downgraded:
        headers["x-tiergate-downgraded"] = plan.ticket.downgraded
    return headers
