"""The chat service: one request from model name to answer, with routing and fallback.

Resolves the name the client sent (`auto`, `auto:<policy>`, a deployment), asks the router for a
score and the policy for a tier, then tries deployments in order until one answers. Fallback only
happens before the first byte reaches the client; after that the answer belongs to the deployment
that started it. Every accepted request ends in exactly one `RequestRecord`, whatever happened.
The caller's key is checked against the route here and its limits reserved
(`gateway.access.quota`); each attempt on a deployment goes through `gateway.chat.attempt`
(breaker, slots, timeouts, retries).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.access.counters import MemoryCounters
from gateway.access.keys import ApiKey, authorize
from gateway.access.quota import Quota, Ticket
from gateway.access.request_limits import check_request
from gateway.chat.attempt import (
    Failures,
    Resilience,
    exhausted_error,
    fallback_header,
    log_failure,
    unavailable,
)
from gateway.chat.scoring import BatchingScorer
from gateway.chat.stream import StreamRelay
from gateway.config import GatewayConfig
from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import JSON, ChatCompletionRequest, RoutedRequest
from gateway.telemetry.record import RequestRecord, Telemetry
from gateway.telemetry.tokens import estimate, usage_of
from gateway.upstream.balancer import Balancer
from gateway.upstream.base import Backend, Refused, Target, UpstreamCall, UpstreamError
from policies import TIERS, Decision, Policy, RouteRequest, TierName

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What the route turns into a response: a JSON body or a stream, plus headers."""

    headers: dict[str, str]
    body: JSON | None = None
    stream: AsyncIterator[bytes] | None = None
    abandon: Callable[[], Awaitable[None]] | None = None
    """For a stream: call after the response, whether or not `stream` was ever read."""


@dataclass
class _Plan:
    policy: Policy | None
    decision: Decision | None
    candidates: list[Target]
    tier_of: dict[str, TierName] = field(default_factory=dict)
    ticket: Ticket | None = None


class ChatService:
    def __init__(
        self,
        config: GatewayConfig,
        policies: Mapping[str, Policy],
        balancer: Balancer,
        backends: Mapping[str, Backend],
        scorer: BatchingScorer,
        telemetry: Sequence[Telemetry],
        *,
        resilience: Resilience | None = None,
        quota: Quota | None = None,
    ) -> None:
        self.config = config
        self.policies = dict(policies)
        self.balancer = balancer
        self.backends = dict(backends)
        self.scorer = scorer
        self.telemetry = list(telemetry)
        self.resilience = resilience or Resilience(config.deployments)
        self.quota = quota or Quota(MemoryCounters(), on_error=config.limits.on_redis_error)
        large = config.tiers["large"].deployments[0]
        self._large_price = config.deployments[large].price

    # --- names ----------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        return ["auto", *(f"auto:{p}" for p in self.policies), *self.config.deployments]

    def _resolve(self, model: str) -> tuple[Policy | None, Target | None]:
        if model == "auto":
            return self.policies[self.config.default_policy], None
        if model.startswith("auto:") and model[5:] in self.policies:
            return self.policies[model[5:]], None
        if model in self.balancer.targets:
            return None, self.balancer.targets[model]
        raise GatewayError(
            404,
            f"model {model!r} does not exist; use one of: {', '.join(self.model_names())}",
            code="model_not_found",
            param="model",
        )

    # --- one request ----------------------------------------------------------------------

    async def handle(
        self,
        endpoint: Literal["chat", "completions"],
        request: RoutedRequest,
        headers: Mapping[str, str],
        key: ApiKey | None = None,
    ) -> Outcome:
        """`key` is the caller's, already authenticated (None when the gateway is open)."""
        limits = self.config.limits
        check_request(request, max_messages=limits.max_messages, max_tokens=limits.max_tokens)
        started = time.perf_counter()
        rec = RequestRecord(
            request_id=headers.get("x-request-id") or f"req-{uuid.uuid4().hex[:24]}",
            started_at=time.time(),
            endpoint=endpoint,
            api_key_id=key.id if key is not None else None,
            stream=bool(request.stream),
        )
        for sink in self.telemetry:
            sink.request_started()
        plan: _Plan | None = None
        try:
            plan = await self._plan(request, headers, rec, key)
            await self._admit(plan, request, key)
            call = _upstream_call(endpoint, request)
            if request.stream:
                return await self._stream(plan, call, request, rec, started)
            return await self._complete(plan, call, rec, started, request.prompt_chars())
        except GatewayError as exc:
            rec.status_code = exc.status
            rec.error_kind = rec.error_kind or exc.code
            rec.latency_s = time.perf_counter() - started
            self._emit(rec, plan)
            exc.headers.setdefault("x-request-id", rec.request_id)
            raise
        except asyncio.CancelledError:  # the server is going away with the request unanswered
            rec.status_code, rec.client_aborted = 499, True
            rec.latency_s = time.perf_counter() - started
            self._emit(rec, plan)
            raise
        except Exception:  # a bug of ours: still one record, and the envelope handler answers 500
            rec.status_code, rec.error_kind = 500, "internal"
            rec.latency_s = time.perf_counter() - started
            self._emit(rec, plan)
            raise

    async def _plan(
        self,
        request: RoutedRequest,
        headers: Mapping[str, str],
        rec: RequestRecord,
        key: ApiKey | None,
    ) -> _Plan:
        policy, direct = self._resolve(request.model)
        authorize(
            key,
            policy=policy.name if policy is not None else None,
            deployment=direct.name if direct is not None else None,
        )
        forced = headers.get("x-tiergate-tier")
        if forced is not None and forced not in TIERS:
            raise GatewayError(
                400,
                f"header x-tiergate-tier must be one of {list(TIERS)}; got {forced!r}",
                code="invalid_tier",
                param="x-tiergate-tier",
            )
        if direct is not None:
            tier = self.config.tier_of(direct.name)
            rec.decision_reason = "direct"
            rec.intended_tier = tier
            return _Plan(None, None, [direct], {direct.name: tier} if tier else {})
        assert policy is not None
        p_strong, rec.router_s = await self.scorer.score(request.routing_items())
        route = RouteRequest(
            prompt_tokens=estimate(request.prompt_chars()),
            needs_tools=isinstance(request, ChatCompletionRequest) and bool(request.tools),
            forced_tier=forced,  # checked against TIERS above
        )
        decision = policy.decide(route, p_strong)
        rec.policy, rec.p_strong, rec.threshold = policy.name, p_strong, decision.threshold
        rec.decision_reason, rec.intended_tier = decision.reason, decision.tier
        candidates: list[Target] = []
        tier_of: dict[str, TierName] = {}
        for tier in (decision.tier, *decision.fallbacks):
            for target in self.balancer.order(tier):
                if key is None or key.may_reach(target.name):
                    candidates.append(target)
                    tier_of[target.name] = tier
        if not candidates:
            authorize(key, policy=None, deployment=self.balancer.order(decision.tier)[0].name)
        return _Plan(policy, decision, candidates, tier_of)

    async def _admit(self, plan: _Plan, request: RoutedRequest, key: ApiKey | None) -> None:
        if key is None:
            return
        spec = plan.policy.spec if plan.policy is not None else None
        downgrade: list[Literal["budget", "rate"]] = []
        if spec is not None and spec.on_over_budget == "downgrade":
            downgrade.append("budget")
        if spec is not None and spec.on_over_rate == "downgrade":
            downgrade.append("rate")
        plan.ticket, plan.candidates = await self.quota.admit_request(
            key,
            request,
            plan.candidates,
            plan.tier_of,
            downgrade=downgrade,
            default_completion_tokens=self.config.limits.reserve_completion_tokens,
        )

    async def _skip(self, plan: _Plan, target: Target) -> UpstreamError | None:
        """Why `target` is not even tried: its key is not set, or the budget cannot pay for it."""
        if not target.available:
            return unavailable(target)
        if plan.ticket is not None and not await self.quota.cover(plan.ticket, target.name):
            return Refused("over_budget", "the key's budget cannot pay for it", retry_after=60)
        return None

    async def _complete(
        self, plan: _Plan, call: UpstreamCall, rec: RequestRecord, started: float, prompt_chars: int
    ) -> Outcome:
        failures: Failures = []
        for target in plan.candidates:
            if (skip := await self._skip(plan, target)) is not None:
                failures.append((target.name, skip))
                continue
            upstream_started = time.perf_counter()
            backend = self.backends[target.deployment.backend]
            try:
                with self.balancer.busy(target.name):
                    body = await self.resilience.complete(
                        target, functools.partial(backend.complete, target, call)
                    )
            except UpstreamError as exc:
                log_failure(target.name, exc)
                failures.append((target.name, exc))
                if not exc.falls_back:
                    break
                continue
            rec.upstream_latency_s = time.perf_counter() - upstream_started
            body["model"] = target.name
            self._account(rec, plan, target, failures)
            prompt, completion, estimated = usage_of(body, prompt_chars)
            self._count(rec, target, prompt, completion, estimated=estimated)
            rec.latency_s = time.perf_counter() - started
            rec.overhead_s = rec.latency_s - rec.upstream_latency_s
            self._emit(rec, plan)
            headers = self._headers(rec, failures, plan)
            headers["x-tiergate-cost-usd"] = f"{rec.cost_usd:.10f}"
            return Outcome(headers, body=body)
        raise exhausted_error(rec, failures)

    async def _stream(
        self,
        plan: _Plan,
        call: UpstreamCall,
        request: RoutedRequest,
        rec: RequestRecord,
        started: float,
    ) -> Outcome:
        failures: Failures = []
        wants_usage = bool(request.stream_options and request.stream_options.include_usage)
        for target in plan.candidates:
            if (skip := await self._skip(plan, target)) is not None:
                failures.append((target.name, skip))
                continue

            def relay_for(target: Target = target) -> StreamRelay:
                return StreamRelay(
                    self.backends[target.deployment.backend].stream(target, call),
                    target_name=target.name,
                    client_wants_usage=wants_usage,
                    prompt_chars=request.prompt_chars(),
                )

            upstream_started = time.perf_counter()
            try:
                relay = await self.resilience.open_stream(target, relay_for)
            except UpstreamError as exc:
                log_failure(target.name, exc)
                failures.append((target.name, exc))
                if not exc.falls_back:
                    break
                continue
            rec.ttft_s = time.perf_counter() - started
            self._account(rec, plan, target, failures)

            def finish(
                relay: StreamRelay = relay, target: Target = target, t0: float = upstream_started
            ) -> None:
                rec.upstream_latency_s = time.perf_counter() - t0
                rec.latency_s = time.perf_counter() - started
                rec.overhead_s = max(0.0, rec.latency_s - rec.upstream_latency_s)
                self._count(
                    rec,
                    target,
                    relay.prompt_tokens,
                    relay.completion_tokens,
                    estimated=relay.estimated,
                )
                rec.client_aborted, rec.partial = relay.client_aborted, relay.partial
                if relay.error is not None:
                    rec.error_kind = relay.error.kind
                if relay.client_aborted:
                    rec.status_code = 499
                self.resilience.stream_done(target.name, relay)
                self._emit(rec, plan)

            headers = self._headers(rec, failures, plan)
            stream = relay.events(self.balancer, finish)
            return Outcome(headers, stream=stream, abandon=functools.partial(relay.abandon, finish))
        raise exhausted_error(rec, failures)

    # --- accounting -----------------------------------------------------------------------

    def _account(
        self, rec: RequestRecord, plan: _Plan, target: Target, failures: list[Any]
    ) -> None:
        rec.deployment = target.name
        rec.served_tier = plan.tier_of.get(target.name) or self.config.tier_of(target.name)
        if failures:
            rec.fallback_reason = failures[0][1].kind

    def _count(
        self, rec: RequestRecord, target: Target, prompt: int, completion: int, estimated: bool
    ) -> None:
        rec.prompt_tokens, rec.completion_tokens = prompt, completion
        rec.tokens_estimated = estimated
        rec.cost_usd = target.deployment.price.cost(prompt, completion)
        rec.counterfactual_cost_usd = self._large_price.cost(prompt, completion)

    def _headers(self, rec: RequestRecord, failures: Failures, plan: _Plan) -> dict[str, str]:
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

    def _emit(self, rec: RequestRecord, plan: _Plan | None) -> None:
        if plan is not None and plan.ticket is not None:
            self.quota.settle(plan.ticket, rec.prompt_tokens + rec.completion_tokens, rec.cost_usd)
        for sink in self.telemetry:
            try:
                sink.record(rec)
            except Exception:  # telemetry must never cost a client its answer
                log.exception("telemetry sink %r failed", sink)


def _upstream_call(
    endpoint: Literal["chat", "completions"], request: RoutedRequest
) -> UpstreamCall:
    """Split the request into known fields and pass-through extras; always ask for usage."""
    extras = set(request.model_extra or {})
    data = request.model_dump(exclude_unset=True, exclude_none=False)
    params = {k: v for k, v in data.items() if k not in extras and k not in ("model", "stream")}
    if request.stream:
        params["stream_options"] = {**(params.get("stream_options") or {}), "include_usage": True}
    return UpstreamCall(endpoint, params, {k: data[k] for k in extras if k in data})
