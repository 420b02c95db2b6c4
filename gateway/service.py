"""The chat service: one request from model name to answer, with routing and fallback.

Resolves the name the client sent (`auto`, `auto:<policy>`, a deployment), asks the router for a
score and the policy for a tier, then tries deployments in order until one answers. Fallback only
happens before the first byte reaches the client; after that the answer belongs to the deployment
that started it. Every accepted request ends in exactly one `RequestRecord`, whatever happened.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.backends import JSON, Backend, Target, UpstreamCall, UpstreamError
from gateway.balancer import Balancer
from gateway.errors import GatewayError
from gateway.protocol import ChatCompletionRequest, RoutedRequest
from gateway.records import RequestRecord, Telemetry
from gateway.scoring import BatchingScorer
from gateway.streaming import StreamRelay
from policies import TIERS, Decision, GatewayConfig, Policy, RouteRequest, TierName

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
"""Prompt length estimate before any tokenizer runs: about four characters a token in English."""


@dataclass
class Outcome:
    """What the route turns into a response: a JSON body or a stream, plus headers."""

    headers: dict[str, str]
    body: JSON | None = None
    stream: AsyncIterator[bytes] | None = None


@dataclass
class _Plan:
    policy: Policy | None
    decision: Decision | None
    candidates: list[Target]
    tier_of: dict[str, TierName] = field(default_factory=dict)


class ChatService:
    def __init__(
        self,
        config: GatewayConfig,
        policies: Mapping[str, Policy],
        balancer: Balancer,
        backends: Mapping[str, Backend],
        scorer: BatchingScorer,
        telemetry: Sequence[Telemetry],
    ) -> None:
        self.config = config
        self.policies = dict(policies)
        self.balancer = balancer
        self.backends = dict(backends)
        self.scorer = scorer
        self.telemetry = list(telemetry)
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
        api_key_id: str | None = None,
    ) -> Outcome:
        started = time.perf_counter()
        rec = RequestRecord(
            request_id=headers.get("x-request-id") or f"req-{uuid.uuid4().hex[:24]}",
            started_at=time.time(),
            endpoint=endpoint,
            api_key_id=api_key_id,
            stream=bool(request.stream),
        )
        for sink in self.telemetry:
            sink.request_started()
        try:
            plan = await self._plan(request, headers, rec)
            call = _upstream_call(endpoint, request)
            if request.stream:
                return await self._stream(plan, call, request, rec, started)
            return await self._complete(plan, call, rec, started)
        except GatewayError as exc:
            rec.status_code = exc.status
            rec.error_kind = rec.error_kind or exc.code
            rec.latency_s = time.perf_counter() - started
            self._emit(rec)
            exc.headers.setdefault("x-request-id", rec.request_id)
            raise

    async def _plan(
        self, request: RoutedRequest, headers: Mapping[str, str], rec: RequestRecord
    ) -> _Plan:
        policy, direct = self._resolve(request.model)
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
            prompt_tokens=request.prompt_chars() // CHARS_PER_TOKEN,
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
                candidates.append(target)
                tier_of[target.name] = tier
        return _Plan(policy, decision, candidates, tier_of)

    async def _complete(
        self, plan: _Plan, call: UpstreamCall, rec: RequestRecord, started: float
    ) -> Outcome:
        failures: list[tuple[str, UpstreamError]] = []
        for target in plan.candidates:
            if not target.available:
                failures.append((target.name, _unavailable(target)))
                continue
            upstream_started = time.perf_counter()
            try:
                with self.balancer.busy(target.name):
                    body = await self.backends[target.deployment.backend].complete(target, call)
            except UpstreamError as exc:
                log.warning("%s failed (%s): %s", target.name, exc.kind, exc.message)
                failures.append((target.name, exc))
                if not exc.retryable:
                    break
                continue
            rec.upstream_latency_s = time.perf_counter() - upstream_started
            body["model"] = target.name
            usage = body.get("usage") or {}
            self._account(rec, plan, target, failures)
            self._count(
                rec,
                target,
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
                estimated=not usage,
            )
            rec.latency_s = time.perf_counter() - started
            rec.overhead_s = rec.latency_s - rec.upstream_latency_s
            self._emit(rec)
            headers = self._headers(rec, failures)
            headers["x-tiergate-cost-usd"] = f"{rec.cost_usd:.10f}"
            return Outcome(headers, body=body)
        raise self._exhausted(rec, failures)

    async def _stream(
        self,
        plan: _Plan,
        call: UpstreamCall,
        request: RoutedRequest,
        rec: RequestRecord,
        started: float,
    ) -> Outcome:
        failures: list[tuple[str, UpstreamError]] = []
        for target in plan.candidates:
            if not target.available:
                failures.append((target.name, _unavailable(target)))
                continue
            relay = StreamRelay(
                self.backends[target.deployment.backend].stream(target, call),
                target_name=target.name,
                client_wants_usage=bool(
                    request.stream_options and request.stream_options.include_usage
                ),
                prompt_chars=request.prompt_chars(),
            )
            upstream_started = time.perf_counter()
            try:
                await relay.open()
            except UpstreamError as exc:
                log.warning("%s failed (%s): %s", target.name, exc.kind, exc.message)
                failures.append((target.name, exc))
                if not exc.retryable:
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
                self._emit(rec)

            return Outcome(self._headers(rec, failures), stream=relay.events(self.balancer, finish))
        raise self._exhausted(rec, failures)

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

    def _headers(
        self, rec: RequestRecord, failures: list[tuple[str, UpstreamError]]
    ) -> dict[str, str]:
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
            headers["x-tiergate-fallback"] = ", ".join(f"{n}={e.kind}" for n, e in failures)
        return headers

    def _exhausted(
        self, rec: RequestRecord, failures: list[tuple[str, UpstreamError]]
    ) -> GatewayError:
        """The error for a request no deployment could answer."""
        if not failures:
            return GatewayError(503, "no deployment is configured for this route", code="no_route")
        last_name, last = failures[-1]
        rec.fallback_reason = failures[0][1].kind if len(failures) > 1 else None
        rec.error_kind = last.kind
        tried = "; ".join(f"{n}: {e.kind}" for n, e in failures)
        headers = {"x-tiergate-fallback": ", ".join(f"{n}={e.kind}" for n, e in failures)}
        if last.kind == "client_error" and last.status is not None:
            # The upstream refused the request itself: the client must change it, not retry.
            return GatewayError(
                last.status,
                f"{last_name} rejected the request: {last.message}",
                code="upstream_rejected",
                headers=headers,
            )
        if all(e.kind == "unavailable" for _, e in failures):
            return GatewayError(
                503,
                f"no deployment can be reached ({tried})",
                code="no_deployment_available",
                headers=headers,
            )
        if last.kind == "rate_limited" and last.retry_after is not None:
            headers["retry-after"] = f"{last.retry_after:g}"
        status = 504 if last.kind == "timeout" else 502
        return GatewayError(
            status,
            f"every deployment failed ({tried})",
            code=f"upstream_{last.kind}",
            headers=headers,
        )

    def _emit(self, rec: RequestRecord) -> None:
        for sink in self.telemetry:
            try:
                sink.record(rec)
            except Exception:  # telemetry must never cost a client its answer
                log.exception("telemetry sink %r failed", sink)


def _unavailable(target: Target) -> UpstreamError:
    return UpstreamError(
        "unavailable", f"{target.deployment.api_key_env} is not set, so {target.name} is off"
    )


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
