"""Planning one request: which deployments to try, in which order, and what the key may spend.

`Planner.plan` resolves the name the client sent (`auto`, `auto:<policy>`, a deployment), checks
the caller's key against it, and, for a routed request, gathers the facts the policy decides on:
the router's score and operator route (one micro-batched call, `gateway.chat.scoring`), the kinds
of personal data it carries when the policy acts on them (`gateway.chat.privacy`), tools, size and
a forced tier. The candidates are the chosen tier's deployments (in the balancer's order, a
route's deployment first), then each fallback tier's, minus those the key may not reach and, when
the request must stay local, every deployment not marked `local: true`. A policy that keeps
personal data local and has no local tier able to serve it refuses the request (400
`pii_no_local_tier`): it is never sent elsewhere. `Planner.admit` then reserves the request's
share of the key's limits (`gateway.access.quota`); a policy that downgrades instead of refusing
leaves only the cheapest tier's candidates (`policies.admission`). Both report what they decided to
the request's ledger; `Planner.private` wraps the request's wire so that, under `pii: redact`,
deployments not marked local get its redacted copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.access.keys import ApiKey, authorize
from gateway.access.quota import Quota, Ticket
from gateway.access.request_limits import completion_budget, completion_cap
from gateway.chat import privacy
from gateway.chat.capabilities import Need, capable, content_needs, modalities
from gateway.chat.ledger import Ledger
from gateway.chat.scoring import BatchingScorer
from gateway.chat.wire import Wire
from gateway.config import GatewayConfig
from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import ChatCompletionRequest, RoutedRequest
from gateway.telemetry.tokens import estimate, reservation_estimate
from gateway.upstream.balancer import Balancer
from gateway.upstream.base import Target
from policies import (
    Decision,
    InvalidTier,
    NoEligibleTier,
    Policy,
    RouteRequest,
    TierName,
    after_downgrade,
    downgrades,
    forced_tier,
    reservation_costs,
)
from policies.pii import Detector

TIER_HEADER = "x-tiergate-tier"
ECHO_CHARS = 64
"""How much of a name the client sent an error message repeats."""


def echo(name: str) -> str:
    """`name` as an error repeats it: its first `ECHO_CHARS` characters, "..." if cut (a client
    may send a model name of megabytes)."""
    return name if len(name) <= ECHO_CHARS else name[:ECHO_CHARS] + "..."


@dataclass
class Plan:
    """The deployments one request may try, in order, and what it holds against its key."""

    policy: Policy | None
    """None for a direct request (the client named a deployment)."""
    decision: Decision | None
    candidates: list[Target]
    tier_of: dict[str, TierName] = field(default_factory=dict)
    ticket: Ticket | None = None
    completion_cap: int | None = None
    """Completion tokens per choice that the key's reservation assumed, when the key has a
    budget or a tpm limit: sent upstream, so the upstream stops where the reservation does."""
    redacted: dict[str, int] | None = None
    """Values replaced by placeholders, by kind, for non-local deployments (`Planner.private`)."""
    chars: int = 0
    """The request's text length (what scanning it for personal data costs)."""

    def tier(self, target: Target) -> TierName | None:
        return self.tier_of.get(target.name)


class Planner:
    def __init__(
        self,
        config: GatewayConfig,
        policies: Mapping[str, Policy],
        balancer: Balancer,
        scorer: BatchingScorer,
        quota: Quota,
    ) -> None:
        self._config = config
        self._policies = dict(policies)
        self._balancer = balancer
        self._scorer = scorer
        self._quota = quota
        self._tiers = config.tier_order()
        self.detector = Detector(config.pii_patterns)

    def model_names(self) -> list[str]:
        """Every name a client may send as `model`."""
        return ["auto", *(f"auto:{p}" for p in self._policies), *self._config.deployments]

    async def plan(
        self,
        request: RoutedRequest,
        headers: Mapping[str, str],
        key: ApiKey | None,
        ledger: Ledger,
        needs: frozenset[Need] = frozenset(),
    ) -> Plan:
        """`needs`: what the request needs beyond what its content shows (a Responses request's
        built-in tools); only deployments that have every need are candidates."""
        needs = needs | content_needs(request)
        policy, direct = self._resolve(request.model)
        authorize(
            key,
            policy=policy.name if policy is not None else None,
            deployment=direct.name if direct is not None else None,
        )
        try:
            forced = forced_tier(headers.get(TIER_HEADER), self._tiers)
        except InvalidTier as exc:
            raise GatewayError(
                400, f"header {TIER_HEADER} {exc}", code="invalid_tier", param=TIER_HEADER
            ) from None
        if direct is not None:
            tier = self._config.tier_of(direct.name)
            ledger.direct(tier)
            return Plan(None, None, capable([direct], needs), {direct.name: tier} if tier else {})
        assert policy is not None
        pii = await privacy.kinds(self.detector, request) if policy.spec.pii != "off" else ()
        scored = await self._scorer.score(request.routing_items())
        match = scored.match
        route = RouteRequest(
            prompt_tokens=estimate(request.prompt_chars()),
            needs_tools=isinstance(request, ChatCompletionRequest) and bool(request.tools),
            forced_tier=forced,
            category=match.category if match is not None else None,
            category_probability=match.probability if match is not None else None,
            pii=pii,
            modalities=modalities(needs),
        )
        ledger.classified(policy.name, scored.p_strong, scored.seconds, match, pii)
        try:
            decision = policy.decide(route, scored.p_strong)
        except NoEligibleTier as exc:
            ledger.refused(exc.reason)
            raise GatewayError(400, str(exc), code="pii_no_local_tier", param="messages") from None
        ledger.routed(decision, scored.seconds)
        candidates: list[Target] = []
        tier_of: dict[str, TierName] = {}
        for tier in (decision.tier, *decision.fallbacks):
            for target in self._order(tier, decision):
                if key is None or key.may_reach(target.name):
                    candidates.append(target)
                    tier_of[target.name] = tier
        if not candidates:
            authorize(key, policy=None, deployment=self._balancer.order(decision.tier)[0].name)
        plan = Plan(policy, decision, capable(candidates, needs), tier_of)
        plan.chars = request.prompt_chars()
        return plan

    def _order(self, tier: TierName, decision: Decision) -> list[Target]:
        """The tier's deployments to try: a route's own first, only local ones when the request
        must stay local."""
        targets = self._balancer.order(tier)
        if decision.deployment is not None and tier == decision.tier:
            targets.sort(key=lambda t: t.name != decision.deployment)
        if decision.keep_local:
            targets = [t for t in targets if t.deployment.local]
        return targets

    async def private(self, plan: Plan, wire: Wire) -> Wire:
        """`wire`, or under `pii: redact` with personal data found, a wire whose call to every
        deployment not marked local has each match replaced by a placeholder."""
        if plan.decision is None or not plan.decision.redact:
            return wire
        redacted = await privacy.RedactedWire.build(
            wire, self.detector, plan.candidates, plan.chars
        )
        plan.redacted = redacted.counts
        return redacted

    async def admit(
        self, plan: Plan, request: RoutedRequest, key: ApiKey | None, ledger: Ledger
    ) -> None:
        """Reserve the request's share of `key`'s limits (429 or 503 when it does not fit)."""
        if key is None:
            return
        downgrade = downgrades(plan.policy.spec if plan.policy is not None else None)
        prompt = reservation_estimate(request.prompt_chars())
        reserve = self._config.limits.reserve_completion_tokens
        completion = completion_budget(request, reserve)
        if key.spec.budget_usd is not None or key.spec.tpm is not None:
            plan.completion_cap = completion_cap(request, reserve)
        costs = {t.name: t.deployment.price.cost(prompt, completion) for t in plan.candidates}
        first, small = reservation_costs(
            [(plan.tier(t), costs[t.name]) for t in plan.candidates], downgrade, self._tiers[0]
        )
        ticket = await self._quota.admit(
            key,
            tokens=prompt + completion,
            cost_usd=first,
            small_cost_usd=small,
            downgrade=downgrade,
            costs=costs,
        )
        plan.ticket = ticket
        ledger.holds(ticket)
        if ticket.downgraded:
            plan.candidates = after_downgrade(plan.candidates, plan.tier, self._tiers[0])

    def _resolve(self, model: str) -> tuple[Policy | None, Target | None]:
        if model == "auto":
            return self._policies[self._config.default_policy], None
        if model.startswith("auto:") and model[5:] in self._policies:
            return self._policies[model[5:]], None
        if model in self._balancer.targets:
            return None, self._balancer.targets[model]
        raise GatewayError(
            404,
            f"model {echo(model)!r} does not exist; use one of: {', '.join(self.model_names())}",
            code="model_not_found",
            param="model",
        )
