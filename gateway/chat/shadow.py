"""Shadow judging: after a cheaper tier's answer reached the client, was it as good as the best?

A policy with `shadow: {fraction, judge, daily_budget_usd}` samples `fraction` of the requests a
cheaper tier answered (`policies.escalation.shadowed`: never a request whose personal data must
stay local). For each, in the background, the most capable tier answers the same request, then
the `judge` deployment compares the two answers twice, once in each order, which cancels a
judge's preference for the first or the second position. Each order says whether the cheaper
answer was at least as good (it won or tied); the verdict is their mean (1, 0.5 or 0) and becomes
a stored outcome (`gateway.chat.outcomes`) that retraining reads.

Never beyond the budget: before any call, the shadow reserves its worst case (the capable tier's
answer capped at the reserve, the judge's two short answers, prompts over-estimated) against a
per-policy daily counter in the shared counter store (`gateway.access.counters`: Redis when
configured, so workers and replicas share one budget), and settles it with what was spent. A
reservation that does not fit skips the request (`tiergate_shadow_skipped_total{reason="budget"}`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.access.counters import CounterError, CounterStore
from gateway.access.quota import NANO_USD
from gateway.chat.attempt import Attempts
from gateway.chat.escalation import answer_text, answers_of
from gateway.chat.outcomes import Answered, OutcomeKeeper
from gateway.config import GatewayConfig
from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import JSON
from gateway.telemetry.quality import QualityMetrics
from gateway.telemetry.tokens import reservation_estimate, usage_of
from gateway.upstream.base import Target, UpstreamCall, UpstreamError
from policies import ShadowSpec

log = logging.getLogger(__name__)

JUDGE_MAX_TOKENS = 16
JUDGE_OVERHEAD_CHARS = 600
MAX_RUNNING = 4
"""Shadow jobs judging at once per process; the others wait their turn."""
MAX_PENDING = 256
"""Shadow jobs waiting or judging per process; a sample past it is skipped (`busy`)."""
JUDGE_SYSTEM = (
    "You are an impartial judge. Compare two answers to the same request and decide which one "
    "answers it better: correctness first, then completeness and clarity. Reply with exactly one "
    "of: A, B, tie."
)
_CHOICE = re.compile(r"\b(tie|a|b)\b", re.I)


def judge_messages(request: str, first: str, second: str) -> list[JSON]:
    """The judge's prompt for one order: answer A is `first`, answer B is `second`."""
    user = (
        f"[Request]\n{request}\n\n[Answer A]\n{first}\n\n[Answer B]\n{second}\n\n"
        "Which answer is better? Reply with exactly one of: A, B, tie."
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_choice(text: str) -> str | None:
    """`A`, `B` or `tie` from a judge's reply (its first such word), else None."""
    match = _CHOICE.search(text or "")
    if match is None:
        return None
    word = match.group(1).lower()
    return "tie" if word == "tie" else word.upper()


def verdict_of(weak_first: str | None, strong_first: str | None) -> float | None:
    """The cheaper answer's verdict from the two orders' choices: the share of orders in which
    it won or tied (an unreadable order is left out; None if both are)."""
    scores = []
    if weak_first is not None:
        scores.append(1.0 if weak_first in ("A", "tie") else 0.0)
    if strong_first is not None:
        scores.append(1.0 if strong_first in ("B", "tie") else 0.0)
    return sum(scores) / len(scores) if scores else None


@dataclass(frozen=True)
class ShadowJob:
    """One sampled request: what was answered and the call that answered it."""

    answered: Answered
    call: UpstreamCall
    spec: ShadowSpec
    prompt_chars: int
    completion_cap: int


class ShadowBudget:
    """Each policy's daily shadow budget: one counter per UTC day in nano-USD, in the shared
    counter store, reserved before any call and settled after."""

    def __init__(self, store: CounterStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def _key(self, policy: str | None) -> str:
        return f"shadow:{policy or 'none'}:{time.strftime('%Y-%m-%d', time.gmtime(self._clock()))}"

    async def reserve(self, policy: str | None, usd: float, limit_usd: float) -> str | None:
        """The counter holding the reservation, or None when the budget cannot take it."""
        key = self._key(policy)
        taken, _ = await self._store.reserve(
            key, round(usd * NANO_USD), round(limit_usd * NANO_USD), 2 * 86400
        )
        return key if taken else None

    async def settle(self, key: str, reserved_usd: float, spent_usd: float) -> None:
        delta = round(spent_usd * NANO_USD) - round(reserved_usd * NANO_USD)
        if delta:
            await self._store.adjust(key, delta, 2 * 86400)

    async def spent(self, policy: str | None) -> float:
        return await self._store.get(self._key(policy)) / NANO_USD


class ShadowJudge:
    """Samples answered requests and judges them in the background; built once per app."""

    def __init__(
        self,
        config: GatewayConfig,
        attempts: Attempts,
        strong: Sequence[Target],
        targets: dict[str, Target],
        budget: ShadowBudget,
        keeper: OutcomeKeeper,
        metrics: QualityMetrics | None,
        *,
        sample: Callable[[], float] = random.random,
    ) -> None:
        """`strong`: the most capable tier's deployments, in order; `targets`: every deployment
        by name (the judges)."""
        self._config = config
        self._attempts = attempts
        self._strong = list(strong)
        self._targets = targets
        self.budget = budget
        self._keeper = keeper
        self._metrics = metrics
        self._sample = sample
        self._running: set[asyncio.Task[None]] = set()
        self._turns = asyncio.Semaphore(MAX_RUNNING)

    def consider(self, job: ShadowJob) -> bool:
        """Sample `job` (its policy's fraction) and start judging it; whether it was started."""
        if not self._strong or self._sample() >= job.spec.fraction:
            return False
        if len(self._running) >= MAX_PENDING:
            self._skipped(job, "busy")
            return False
        task = asyncio.get_running_loop().create_task(self._judge(job), name="shadow-judge")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return True

    async def _judge(self, job: ShadowJob) -> None:
        async with self._turns:
            await self._judged(job)

    async def _judged(self, job: ShadowJob) -> None:
        spec, answered = job.spec, job.answered
        judge = self._targets[spec.judge]
        worst = self._worst_case(job, judge)
        try:
            key = await self.budget.reserve(answered.policy, worst, spec.daily_budget_usd)
        except CounterError as exc:
            log.warning("shadow budget counter unreachable (%s): not judging", exc)
            self._skipped(job, "budget")
            return
        if key is None:
            self._skipped(job, "budget")
            return
        spent = 0.0
        try:
            strong = await self._attempts.complete(self._strong, None, capped(job))
            spent += _cost(strong.target, strong.body, job.prompt_chars)
            strong_text = _text(strong.body)
            request = _request_text(answered)
            choices = []
            for first, second in ((answered.answer, strong_text), (strong_text, answered.answer)):
                asked = judge_call(request, first, second)
                reply = await self._attempts.complete([judge], None, asked)
                spent += _cost(judge, reply.body, len(request) + len(first) + len(second))
                choices.append(parse_choice(_text(reply.body)))
            verdict = verdict_of(choices[0], choices[1])
            if verdict is None:
                self._skipped(job, "unreadable")
                return
            if self._metrics is not None:
                self._metrics.shadow_judged(
                    answered.policy, answered.category, answered.tier, verdict
                )
            await self._keeper.keep(
                answered,
                "shadow",
                verdict,
                weak_tier=answered.tier,
                strong_tier=self._config.tier_of(strong.target.name),
                weak_deployment=answered.deployment,
                strong_deployment=strong.target.name,
                judge=spec.judge,
                content={"strong_answer": strong_text, "choices": choices},
            )
        except (GatewayError, UpstreamError) as exc:
            log.info("shadow judging of %s failed: %s", answered.request_id, exc)
            self._skipped(job, "error")
        except Exception:  # the database, a bug: never the client's problem
            log.exception("shadow judging of %s failed", answered.request_id)
            self._skipped(job, "error")
        finally:
            if self._metrics is not None:
                self._metrics.shadow_spent(answered.policy, spent)
            try:
                await self.budget.settle(key, worst, spent)
            except CounterError as exc:
                log.warning("shadow budget not settled (%s)", exc)

    def _worst_case(self, job: ShadowJob, judge: Target) -> float:
        """What judging `job` may cost at most: the capable tier's answer at its cap and the
        judge's two answers, prompts over-estimated."""
        prompt = reservation_estimate(job.prompt_chars)
        strong = max(t.deployment.price.cost(prompt, job.completion_cap) for t in self._strong)
        chars = job.prompt_chars + len(job.answered.answer) + 6 * job.completion_cap
        judged = reservation_estimate(chars + JUDGE_OVERHEAD_CHARS)
        return strong + 2 * judge.deployment.price.cost(judged, JUDGE_MAX_TOKENS)

    def _skipped(self, job: ShadowJob, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.shadow_not_judged(job.answered.policy, reason)

    async def aclose(self) -> None:
        """Stop judging: pending jobs are cancelled (the server is going away)."""
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


def capped(job: ShadowJob) -> UpstreamCall:
    """The request as the capable tier gets it: whole (never streamed), its answer capped at the
    budget's reserve unless the client capped it already."""
    params = {k: v for k, v in job.call.params.items() if k != "stream_options"}
    if params.get("max_tokens") is None and params.get("max_completion_tokens") is None:
        params["max_tokens"] = job.completion_cap
    return UpstreamCall(job.call.endpoint, params, job.call.extra)


def judge_call(request: str, first: str, second: str) -> UpstreamCall:
    params: JSON = {
        "messages": judge_messages(request, first, second),
        "max_tokens": JUDGE_MAX_TOKENS,
        "temperature": 0,
    }
    return UpstreamCall("chat", params)


def _text(body: JSON) -> str:
    choices = answers_of(body)
    return answer_text(choices[0][0]) if choices else ""


def _request_text(answered: Answered) -> str:
    items = answered.items
    if isinstance(items, str):
        return items
    return "\n\n".join(f"{m.get('role')}: {m.get('content')}" for m in items)


def _cost(target: Target, body: JSON, prompt_chars: int) -> float:
    prompt, completion, _ = usage_of(body, prompt_chars)
    return target.deployment.price.cost(prompt, completion)
