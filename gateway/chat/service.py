"""The chat service: one request from model name to answer. Orchestration only.

`ChatService.handle` checks the request's size, opens its ledger, plans it (`gateway.chat.plan`:
resolve, authorize, score and decide, admit against the key's limits), then walks its candidates
(`gateway.chat.attempt`) until one answers: a JSON body, or a stream whose first chunk has arrived
and whose lease (`gateway.chat.stream`) ends it. Fallback only happens before the first byte reaches
the client; after that the answer belongs to the deployment that started it. In escalation mode
the cheaper tier's whole answer is judged first (`gateway.chat.escalation`), and a streamed one is
held back until it is (`gateway.chat.held`). Every accepted request ends in exactly one
`RequestRecord`, whatever happened, written by its ledger (`gateway.chat.ledger`); after a routed
answer reached the client, learning follows (`gateway.chat.learning`). What depends on the
client's dialect (the call each deployment gets, the answer's shape, the stream's events) is its
`Wire` (`gateway.chat.wire`): chat and text completions as they came, or the Responses API
translated (`gateway.chat.responses`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.access.allowance import StreamAllowance
from gateway.access.keys import ApiKey
from gateway.access.quota import Quota
from gateway.access.request_limits import check_request
from gateway.chat.attempt import Answer, Attempts, Exhausted, fallback_header, finish_failed
from gateway.chat.escalation import Decided, Escalation, Escalator, answer_text, answers_of
from gateway.chat.held import (
    KEEPALIVE_S,
    EventSource,
    HeldStream,
    ReplayStream,
    describe_route,
    replay_chunks,
)
from gateway.chat.learning import Learning
from gateway.chat.ledger import Failures, Ledger
from gateway.chat.plan import Plan, Planner
from gateway.chat.stream import StreamLease, StreamRelay
from gateway.chat.wire import ChatWire, Wire, capped
from gateway.config import GatewayConfig
from gateway.lifecycle import Drain, ShuttingDown
from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import JSON, RoutedRequest
from gateway.telemetry.record import RequestRecord, Telemetry
from gateway.telemetry.tokens import reservation_estimate, usage_of
from gateway.upstream.base import Backend, Target, UpstreamCall


@dataclass
class Outcome:
    """What the route turns into a response: a JSON body or a stream, plus headers."""

    headers: dict[str, str]
    body: JSON | None = None
    stream: EventSource | None = None
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
        escalation: Escalation | None = None,
        *,
        keepalive_s: float = KEEPALIVE_S,
        learning: Learning | None = None,
    ) -> None:
        """`drain`: the process's drain (SIGTERM); `escalation`: judges cheaper answers in
        escalation mode; `keepalive_s`: between SSE comments while a streamed answer is held
        back; `learning`: what follows an answer."""
        self._config = config
        self._drain = drain if drain is not None else Drain()
        self._planner = planner
        self._attempts = attempts
        self._quota = quota
        self._sinks = list(sinks)
        self._escalator = Escalator(escalation or Escalation({}), attempts)
        self._keepalive_s = keepalive_s
        self._learning = learning
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
            if plan.escalate_to is not None:
                return await self._escalating(plan, wire, request, ledger)
            if request.stream:
                return await self._stream(plan, wire, request, ledger)
            return await self._complete(plan, wire, request, ledger)
        except GatewayError as exc:
            finish_failed(ledger, exc)
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

    async def _complete(
        self, plan: Plan, wire: Wire, request: RoutedRequest, ledger: Ledger
    ) -> Outcome:
        def call_for(target: Target) -> UpstreamCall:
            return capped(wire.call(target), plan.completion_cap)

        async with self._drain.bounded():
            answer = await self._attempts.complete(plan.candidates, plan.ticket, call_for)
        return self._answered(plan, wire, answer, request, ledger)

    def _answered(
        self, plan: Plan, wire: Wire, answer: Answer, request: RoutedRequest, ledger: Ledger
    ) -> Outcome:
        target = answer.target
        text = text_of(answer.body)
        body, (prompt, completion, estimated) = wire.answer(target, answer.body)
        ledger.served(target.name, plan.tier(target), answer.failures)
        ledger.upstream(answer.upstream_s)
        ledger.usage(target.deployment.price, prompt, completion, estimated=estimated)
        ledger.finish()
        headers = response_headers(ledger.record, answer.failures, plan)
        headers["x-tiergate-cost-usd"] = f"{ledger.record.cost_usd:.10f}"
        self._learn(plan, request, ledger, text)
        return Outcome(headers, body=body)

    def _learn(self, plan: Plan, request: RoutedRequest, ledger: Ledger, text: str) -> None:
        """After a routed answer reached the client (`gateway.chat.learning`)."""
        if self._learning is not None and plan.policy is not None:
            self._learning.answered(plan, request, ledger.record, text)

    async def _stream(
        self, plan: Plan, wire: Wire, request: RoutedRequest, ledger: Ledger
    ) -> Outcome:
        keep_text = self._learning is not None and self._learning.wants(plan)
        prompt_chars = request.prompt_chars()

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
            relay = wire.relay(target, chunks, allowance=allowance, drain=self._drain)
            if keep_text:
                relay.keep_text()
            return relay

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
            after=lambda text: self._learn(plan, request, ledger, text),
        )
        return Outcome(response_headers(ledger.record, opened.failures, plan), stream=lease)

    # --- escalation mode ------------------------------------------------------------------------

    async def _escalating(
        self, plan: Plan, wire: Wire, request: RoutedRequest, ledger: Ledger
    ) -> Outcome:
        """The cheaper answer, judged; the escalation tier's when it fails."""
        escalator = self._escalator
        if not request.stream:
            async with self._drain.bounded():
                decided = await escalator.cheaper(plan, wire, request, ledger)
                answer = decided.answer
                if decided.escalate:
                    answer = await escalator.escalate(plan, wire, decided, request, ledger)
            return self._answered(plan, wire, answer, request, ledger)
        task = asyncio.create_task(self._held_answer(plan, wire, request, ledger))
        try:
            await asyncio.wait({task}, timeout=self._keepalive_s)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.done():
            headers, source = task.result()
            return Outcome(headers, stream=source)
        # Still judging: the headers go now, without the route, and keep-alives follow.
        headers = response_headers(ledger.record, [], plan)
        for name in ("x-tiergate-route", "x-tiergate-deployment"):
            headers.pop(name, None)
        held = HeldStream(
            asyncio.create_task(_source(task)),
            ledger,
            lambda: describe_route(ledger),
            interval_s=self._keepalive_s,
        )
        return Outcome(headers, stream=held)

    async def _held_answer(
        self, plan: Plan, wire: Wire, request: RoutedRequest, ledger: Ledger
    ) -> tuple[dict[str, str], EventSource]:
        """A streamed request's decided answer: the kept cheaper one replayed, or the escalation
        tier's live stream (the cheaper one if that tier cannot answer)."""
        async with self._drain.bounded():
            decided = await self._escalator.cheaper(plan, wire, request, ledger)
        if decided.escalate:
            plan.candidates = plan.escalation
            try:
                outcome = await self._stream(plan, wire, request, ledger)
            except Exhausted as exc:
                ledger.escalation_failed(exc.failures[-1][1].kind if exc.failures else "no_route")
            else:
                Escalator.discard(decided, request, ledger, plan)
                assert outcome.stream is not None
                return outcome.headers, outcome.stream
        return await self._replayed(plan, wire, decided, request, ledger)

    async def _replayed(
        self, plan: Plan, wire: Wire, decided: Decided, request: RoutedRequest, ledger: Ledger
    ) -> tuple[dict[str, str], EventSource]:
        """The kept JSON answer streamed through the client's relay, as if it had streamed."""
        answer = decided.answer
        target = answer.target
        ledger.served(target.name, plan.tier(target), answer.failures)
        ledger.upstream(answer.upstream_s)
        prompt, completion, estimated = usage_of(answer.body, request.prompt_chars())
        ledger.usage(target.deployment.price, prompt, completion, estimated=estimated)
        text = text_of(answer.body)
        relay = wire.relay(target, _replay(replay_chunks(answer.body)))
        await relay.open()

        def finish(client_aborted: bool) -> None:
            ledger.stream_ended(client_aborted=client_aborted, partial=client_aborted, error=None)
            ledger.finish()
            if not client_aborted:
                self._learn(plan, request, ledger, text)

        ledger.first_byte()
        headers = response_headers(ledger.record, answer.failures, plan)
        return headers, ReplayStream(relay, finish)


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
    if rec.escalated is not None:
        headers["x-tiergate-escalated"] = rec.escalated
    return headers


async def _source(task: asyncio.Task[tuple[dict[str, str], EventSource]]) -> EventSource:
    """The source of a held answer, once decided (its headers were sent before)."""
    return (await task)[1]


async def _replay(chunks: list[JSON]) -> AsyncIterator[JSON]:
    for chunk in chunks:
        yield chunk


def text_of(body: JSON) -> str:
    """A JSON answer's first choice as text (its content, else its tool calls as JSON)."""
    choices = answers_of(body)
    return answer_text(choices[0][0]) if choices else ""
