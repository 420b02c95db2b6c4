"""The chat service: one request from model name to answer. Orchestration only.

`ChatService.handle` checks the request's size, opens its ledger, plans it (`gateway.chat.plan`:
resolve, authorize, score and decide, admit against the key's limits), then walks its candidates
(`gateway.chat.attempt`) until one answers: a JSON body, or a stream whose first chunk has arrived
and whose lease (`gateway.chat.stream`) ends it. Fallback only happens before the first byte reaches
the client; after that the answer belongs to the deployment that started it. Every accepted request
ends in exactly one `RequestRecord`, whatever happened, written by its ledger
(`gateway.chat.ledger`).
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
        large = config.tiers["large"].deployments[0]
        self._large_price = config.deployments[large].price

    async def handle(
        self,
        endpoint: Literal["chat", "completions"],
        request: RoutedRequest,
        headers: Mapping[str, str],
        key: ApiKey | None = None,
    ) -> Outcome:
        """`key` is the caller's, already authenticated (None when the gateway is open)."""
        if self._drain.draining:  # not accepted: no record, the client retries elsewhere
            raise ShuttingDown()
        limits = self._config.limits
        check_request(request, max_messages=limits.max_messages, max_tokens=limits.max_tokens)
        ledger = Ledger(
            self._sinks,
            self._quota,
            self._large_price,
            request_id=headers.get("x-request-id"),
            endpoint=endpoint,
            api_key_id=key.id if key is not None else None,
            stream=bool(request.stream),
        )
        try:
            plan = await self._planner.plan(request, headers, key, ledger)
            await self._planner.admit(plan, request, key, ledger)
            call = upstream_call(endpoint, request, plan.completion_cap)
            if request.stream:
                return await self._stream(plan, call, request, ledger)
            return await self._complete(plan, call, request, ledger)
        except GatewayError as exc:
            if isinstance(exc, Exhausted):
                ledger.exhausted(exc.failures)
            ledger.failed(exc)
            ledger.finish()
            exc.headers.setdefault("x-request-id", ledger.request_id)
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
        self, plan: Plan, call: UpstreamCall, request: RoutedRequest, ledger: Ledger
    ) -> Outcome:
        async with self._drain.bounded():
            answer = await self._attempts.complete(plan.candidates, plan.ticket, call)
        target, body = answer.target, answer.body
        body["model"] = target.name
        ledger.served(target.name, plan.tier(target), answer.failures)
        ledger.upstream(answer.upstream_s)
        prompt, completion, estimated = usage_of(body, request.prompt_chars())
        ledger.usage(target.deployment.price, prompt, completion, estimated=estimated)
        ledger.finish()
        headers = response_headers(ledger.record, answer.failures, plan)
        headers["x-tiergate-cost-usd"] = f"{ledger.record.cost_usd:.10f}"
        return Outcome(headers, body=body)

    async def _stream(
        self, plan: Plan, call: UpstreamCall, request: RoutedRequest, ledger: Ledger
    ) -> Outcome:
        wants_usage = bool(request.stream_options and request.stream_options.include_usage)
        prompt_chars = request.prompt_chars()

        def relay_for(target: Target, backend: Backend) -> StreamRelay:
            allowance = StreamAllowance.of(
                self._quota,
                plan.ticket,
                target.deployment.price,
                prompt_tokens=reservation_estimate(prompt_chars),
                block=plan.completion_cap or self._config.limits.reserve_completion_tokens,
            )
            return StreamRelay(
                backend.stream(target, call),
                target_name=target.name,
                client_wants_usage=wants_usage,
                prompt_chars=prompt_chars,
                allowance=allowance,
                drain=self._drain,
            )

        async with self._drain.bounded():
            opened = await self._attempts.open_stream(
                plan.candidates, plan.ticket, call, relay_for
            )
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
    if rec.policy is not None:
        headers["x-tiergate-policy"] = rec.policy
    if rec.p_strong is not None:
        headers["x-tiergate-score"] = f"{rec.p_strong:.4f}"
    if failures:
        headers["x-tiergate-fallback"] = fallback_header(failures)
    if plan.ticket is not None and plan.ticket.downgraded:
        headers["x-tiergate-downgraded"] = plan.ticket.downgraded
    return headers


def upstream_call(
    endpoint: Literal["chat", "completions"], request: RoutedRequest, cap: int | None = None
) -> UpstreamCall:
    """Split the request into known fields and pass-through extras; always ask for usage. `cap`
    (a key with limits: `Plan.completion_cap`) is sent as the completion limit when the client
    set none: `max_completion_tokens` for chat (OpenAI's current name), `max_tokens` for text
    completions, and marked as injected."""
    extras = set(request.model_extra or {})
    data = request.model_dump(exclude_unset=True, exclude_none=False)
    params = {k: v for k, v in data.items() if k not in extras and k not in ("model", "stream")}
    if request.stream:
        params["stream_options"] = {**(params.get("stream_options") or {}), "include_usage": True}
    injected: tuple[str, ...] = ()
    asked = params.get("max_tokens") is not None or params.get("max_completion_tokens") is not None
    if cap is not None and not asked:
        name = "max_completion_tokens" if endpoint == "chat" else "max_tokens"
        params[name], injected = cap, (name,)
    return UpstreamCall(endpoint, params, {k: data[k] for k in extras if k in data}, injected)
