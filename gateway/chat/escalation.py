"""Escalation mode: judging a cheaper tier's whole answer before the client sees any of it.

A policy with `escalate:` (`policies.types.EscalateSpec`) sends a request it routed below the
escalation tier to the cheaper tier first (`policies.escalation.escalation_tier` says when). The
chat service asks the cheaper tier for its whole answer, always as one JSON body (a streamed request
is replayed from it, `gateway.chat.held`), and `Escalation.judge` decides here: the policy's answer
checks in order (`gateway.chat.checks`: pure, microseconds, with one compiled-schema cache for the
process), then, if they pass and the policy names one, the learned verifier's p_escalate against
its threshold (`router.Verifier`: one encoder pass over the answer, in a worker thread). The first
failed check's name, or `verifier`, is the reason the request escalates: the
`x-tiergate-escalated` header, the record's `escalated` field and the metrics' `reason` label.

The checks live in the gateway, not the router, because they read the wire protocol's answer
(`message`, `tool_calls`, `finish_reason`) against the request's contract (`response_format`,
`tools`, `tool_choice`, who set the token limit): they are protocol checks, not text turned into
numbers. The verifier is the router package's: text to a probability.

Who set the limit matters to `truncated`: a `length` finish under the client's own `max_tokens`,
or under a cap the gateway injected for a key's budget (`UpstreamCall.injected`), is not the
model's failure and does not escalate.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gateway.chat.attempt import Answer as Reply
from gateway.chat.attempt import Attempts, Exhausted
from gateway.chat.checks import (
    Answer,
    CheckError,
    LimitSetBy,
    SchemaCache,
    first_failure,
    validate_check_names,
)
from gateway.chat.ledger import Ledger
from gateway.chat.plan import Plan
from gateway.chat.wire import Wire, capped
from gateway.config import ConfigError, GatewayConfig
from gateway.protocol.openai import JSON, ChatCompletionRequest, RoutedRequest
from gateway.telemetry.tokens import usage_of
from gateway.upstream.base import Target, UpstreamCall
from policies import EscalateSpec
from router import Item

VERIFIER_REASON = "verifier"
DEFAULT_VERIFIER = "default"


class AnswerVerifier(Protocol):
    """Scores (request, answer text) pairs with p_escalate: `router.Verifier`, or a test's fake."""

    def score(self, requests: Sequence[Item], answers: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Verdict:
    """What judging a cheaper answer found. `reason` None: the answer is kept."""

    reason: str | None
    detail: str | None = None
    p_escalate: float | None = None
    seconds: float = 0.0


def limit_set_by(request: RoutedRequest, call: UpstreamCall) -> LimitSetBy:
    """Who set the completion limit the upstream ran under: the client, the gateway for a key's
    budget (an injected cap), or nobody (the server's own limit)."""
    asked = request.max_tokens is not None or (
        isinstance(request, ChatCompletionRequest) and request.max_completion_tokens is not None
    )
    if asked:
        return "client"
    return "budget" if call.injected else None


def answers_of(body: JSON) -> list[tuple[Mapping[str, Any], str | None]]:
    """Each choice of a chat or text completion as (message, finish_reason); a text completion's
    `text` reads as the message's content."""
    out: list[tuple[Mapping[str, Any], str | None]] = []
    for choice in body.get("choices") or ():
        if not isinstance(choice, Mapping):
            continue
        message = choice.get("message")
        if not isinstance(message, Mapping):
            message = {"content": choice.get("text") if isinstance(choice.get("text"), str) else ""}
        finish = choice.get("finish_reason")
        out.append((message, finish if isinstance(finish, str) else None))
    return out


def answer_text(message: Mapping[str, Any]) -> str:
    """The text a verifier reads: the content, or the tool calls as JSON when there is none."""
    content = Answer(message).content
    if content.strip():
        return content
    calls = Answer(message).tool_calls
    return json.dumps(list(calls), sort_keys=True, default=str) if calls else content


class Escalation:
    """Judges cheaper answers for every escalating policy; built once per app.

    `verifiers` maps the names policies use (`default`, an artifact directory) to loaded
    verifiers; `build_escalation` loads them from the config.
    """

    def __init__(
        self, verifiers: Mapping[str, AnswerVerifier], cache: SchemaCache | None = None
    ) -> None:
        self.verifiers = dict(verifiers)
        self.cache = cache if cache is not None else SchemaCache()

    async def judge(
        self, spec: EscalateSpec, request: RoutedRequest, body: JSON, limit: LimitSetBy
    ) -> Verdict:
        """Checks (every choice), then the verifier on every choice's text (the highest score)."""
        started = time.perf_counter()
        contract = _contract(request)
        choices = answers_of(body) or [({"content": ""}, None)]
        for message, finish in choices:
            answer = Answer(message, finish, limit_set_by=limit, **contract)
            failure = first_failure(answer, spec.checks, self.cache)
            if failure is not None:
                seconds = time.perf_counter() - started
                return Verdict(failure.check, failure.detail, seconds=seconds)
        if spec.verifier is None:
            return Verdict(None, seconds=time.perf_counter() - started)
        verifier = self.verifiers[spec.verifier]
        items = [request.routing_items()] * len(choices)
        texts = [answer_text(message) for message, _ in choices]
        scores = await asyncio.to_thread(verifier.score, items, texts)
        p = float(np.max(scores)) if len(scores) else 0.0
        seconds = time.perf_counter() - started
        if p > spec.verifier_threshold:
            detail = f"p_escalate {p:.3f} is above the threshold {spec.verifier_threshold:g}"
            return Verdict(VERIFIER_REASON, detail, p, seconds)
        return Verdict(None, p_escalate=p, seconds=seconds)


@dataclass(frozen=True)
class Decided:
    """The cheaper tier's answer and whether to escalate from it."""

    answer: Reply
    escalate: bool


class Escalator:
    """Runs escalation mode for one request at a time, in two steps the chat service calls:
    `cheaper` (the first answer, judged) and `escalate` (the escalation tier's answer)."""

    def __init__(self, escalation: Escalation, attempts: Attempts) -> None:
        self.escalation = escalation
        self._attempts = attempts

    async def cheaper(
        self, plan: Plan, wire: Wire, request: RoutedRequest, ledger: Ledger
    ) -> Decided:
        """The first answer among the plan's candidates, as one JSON body (a streamed request
        too: it is held back whole), judged unless it already came from the escalation tier or
        is not a chat or text completion (a deployment serving the Responses API natively)."""
        spec = plan.policy.spec.escalate if plan.policy is not None else None
        assert spec is not None and plan.escalate_to is not None

        def sent(target: Target) -> UpstreamCall:
            return json_call(capped(wire.call(target), plan.completion_cap))

        answer = await self._attempts.complete(plan.candidates, plan.ticket, sent)
        call = sent(answer.target)
        if plan.tier(answer.target) in plan.escalation_tiers:
            return Decided(answer, escalate=False)  # the cheaper tiers all failed: nothing to judge
        if call.endpoint not in ("chat", "completions"):
            return Decided(answer, escalate=False)
        verdict = await self.escalation.judge(
            spec, request, answer.body, limit_set_by(request, call)
        )
        ledger.judged(plan.escalate_to, verdict.reason, verdict.p_escalate, verdict.seconds)
        return Decided(answer, escalate=verdict.reason is not None)

    async def escalate(
        self,
        plan: Plan,
        wire: Wire,
        decided: Decided,
        request: RoutedRequest,
        ledger: Ledger,
    ) -> Reply:
        """The escalation tier's JSON answer, the cheaper one recorded as discarded; if no
        deployment of the escalation tier answers, the cheaper answer after all."""
        try:
            answer = await self._attempts.complete(
                plan.escalation, plan.ticket, lambda t: capped(wire.call(t), plan.completion_cap)
            )
        except Exhausted as exc:
            ledger.escalation_failed(exc.failures[-1][1].kind if exc.failures else "no_route")
            return decided.answer
        self.discard(decided, request, ledger, plan)
        answer.failures[:0] = decided.answer.failures
        return answer

    @staticmethod
    def discard(decided: Decided, request: RoutedRequest, ledger: Ledger, plan: Plan) -> None:
        """Record the cheaper answer as discarded: its tokens and cost stay the request's."""
        cheap = decided.answer
        prompt, completion, _ = usage_of(cheap.body, request.prompt_chars())
        tier = plan.tier(cheap.target)
        ledger.discarded(cheap.target.name, tier, cheap.target.deployment.price, prompt, completion)


def json_call(call: UpstreamCall) -> UpstreamCall:
    """`call` for a JSON answer: a stream's `stream_options` dropped."""
    if "stream_options" not in call.params:
        return call
    params = {k: v for k, v in call.params.items() if k != "stream_options"}
    return replace(call, params=params)


def _contract(request: RoutedRequest) -> dict[str, Any]:
    """What the request asked of the answer's shape (chat completions only)."""
    if not isinstance(request, ChatCompletionRequest):
        return {}
    return {
        "response_format": request.response_format,
        "tools": request.tools,
        "tool_choice": request.tool_choice,
    }


def build_escalation(
    config: GatewayConfig,
    verifiers: Mapping[str, AnswerVerifier] | None = None,
    encoder: Any = None,
) -> Escalation:
    """The app's `Escalation`: every policy's check names checked, every verifier it names loaded
    (`default`: the shipped one; otherwise an artifact directory), sharing the router's `encoder`
    when given. `verifiers` (tests) replaces loading for the names it has. ConfigError names the
    policy and the value at fault."""
    given = dict(verifiers or {})
    loaded: dict[str, AnswerVerifier] = {}
    for name, policy in config.policies.items():
        spec = policy.escalate
        if spec is None:
            continue
        try:
            validate_check_names(spec.checks)
        except CheckError as exc:
            raise ConfigError(f"policies.{name}.escalate.checks: {exc}") from None
        wanted = spec.verifier
        if wanted is None or wanted in loaded:
            continue
        loaded[wanted] = given[wanted] if wanted in given else _load(name, wanted, encoder)
    return Escalation(loaded)


def _load(policy: str, name: str, encoder: Any) -> AnswerVerifier:
    from router import RouterError, load_verifier

    directory = None if name == DEFAULT_VERIFIER else Path(name).expanduser()
    try:
        return load_verifier(directory, encoder=encoder)
    except RouterError as exc:
        raise ConfigError(
            f"policies.{policy}.escalate.verifier {name!r}: {exc} (give 'default', a verifier "
            "artifact directory, or none)"
        ) from None
