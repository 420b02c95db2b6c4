"""Admitting a request against its key's limits: requests per minute, tokens per minute, budget.

Each limit is a counter in a `CounterStore` (`gateway.access.counters`), per key and per window: the
current UTC minute for rpm and tpm, the UTC day or month for the budget. Before the request goes
upstream, `admit` *reserves* what it may use: one request, its prompt plus its `max_tokens` (or the
configured reserve) in tokens, and those tokens priced at the dearest deployment it may reach in
USD. A reservation that does not fit is refused (429 `rate_limit_exceeded` or `insufficient_quota`,
with `Retry-After`), so concurrent requests on several replicas can never together spend more than
the limit. When the request is over, `settle` replaces the reservation by what it really used.

Which prices to reserve and which candidates a downgrade leaves are decided in `policies.admission`;
this module counts. A policy with `on_over_budget: downgrade` gets a second chance: if the
reservation fits at the small tier's price, the request is admitted for the small tier only, and the
client is told so with `x-tiergate-downgraded: budget`.

A policy with `on_over_rate: downgrade` does the same for rpm and tpm, with one rule: a downgraded
request still counts, against the key's *small-tier overflow* counters (`rpm:<id>:small:<minute>`,
`tpm:<id>:small:<minute>`, the same limits) instead of its main ones. So the key's rpm and tpm bound
what it sends to its routed tiers, and overflow is served by the small tier up to the same limits
again; past both, 429 `rate_limit_exceeded`. Only a request routed above the small tier can be
downgraded (a request bound for the small tier anyway is rejected), the header says
`x-tiergate-downgraded: rate`, and the budget is then reserved at the small tier's price.

When the store cannot be reached the configured choice applies: `open` admits the request uncounted,
`closed` refuses it with 503; either way it is logged (at most once a minute) and counted.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from gateway.access.counters import CounterError, CounterStore
from gateway.access.keys import ApiKey
from gateway.protocol.errors import GatewayError, retry_after_header
from policies import Downgrade

log = logging.getLogger(__name__)

NANO_USD = 1_000_000_000
"""Budgets are counted in integer nano-dollars: Redis increments integers atomically."""
MINUTE_TTL_S = 120

_BUDGET_ONLY: tuple[Downgrade, ...] = ("budget",)
_PERIOD_WORDS = {"day": "daily", "month": "monthly"}


@dataclass
class Ticket:
    """What one admitted request holds against its key; `settle` gives back the difference."""

    key: ApiKey | None
    tokens_key: str | None = None
    tokens_reserved: int = 0
    usd_key: str | None = None
    usd_ttl_s: int = 0
    nano_reserved: int = 0
    downgraded: Downgrade | None = None
    costs: dict[str, int] = field(default_factory=dict)
    """Estimated nano-USD per candidate deployment, for `cover` on a fallback."""
    undo: list[tuple[str, int, int]] = field(default_factory=list)
    """(counter, amount, ttl) taken so far, given back if a later limit refuses the request."""


class Quota:
    def __init__(
        self,
        store: CounterStore,
        *,
        on_error: Literal["open", "closed"],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.on_error = on_error
        self._clock = clock
        self.rejected: Counter[str] = Counter()
        """Requests refused, by reason: `rpm`, `tpm`, `budget`."""
        self.store_errors = 0
        self.downgraded = 0
        """Requests downgraded by `on_over_budget`."""
        self.rate_downgraded = 0
        """Requests downgraded by `on_over_rate`."""
        self._last_warned = 0.0
        self._pending: set[asyncio.Task[None]] = set()

    async def cover(self, ticket: Ticket, deployment: str) -> bool:
        """Before trying `deployment`: top the budget reservation up to its estimated cost.
        False when the budget cannot pay for it (skip it); True when nothing needs covering."""
        need = ticket.costs.get(deployment, 0) - ticket.nano_reserved
        key = ticket.key
        if ticket.usd_key is None or need <= 0 or key is None or key.spec.budget_usd is None:
            return True
        limit = round(key.spec.budget_usd * NANO_USD)
        try:
            taken, _ = await self.store.reserve(ticket.usd_key, need, limit, ticket.usd_ttl_s)
        except CounterError as exc:
            self._store_failed("cover", exc)
            return self.on_error == "open"
        if taken:
            ticket.nano_reserved += need
        return taken

    async def extend(self, ticket: Ticket, *, tokens: int, nano: int) -> str | None:
        """Reserve `tokens` more against the ticket's tpm counter and `nano` more nano-USD
        against its budget (a stream that outgrew its reservation), both or neither. None when
        taken; else the limit that refused (`tpm`, `budget`)."""
        key = ticket.key
        if key is None:
            return None
        took_tokens = 0
        try:
            if tokens > 0 and ticket.tokens_key is not None and key.spec.tpm is not None:
                taken, _ = await self.store.reserve(
                    ticket.tokens_key, tokens, key.spec.tpm, MINUTE_TTL_S
                )
                if not taken:
                    return "tpm"
                ticket.tokens_reserved += tokens
                took_tokens = tokens
            if nano > 0 and ticket.usd_key is not None and key.spec.budget_usd is not None:
                limit = round(key.spec.budget_usd * NANO_USD)
                taken, _ = await self.store.reserve(ticket.usd_key, nano, limit, ticket.usd_ttl_s)
                if not taken:
                    if took_tokens and ticket.tokens_key is not None:
                        await self.store.adjust(ticket.tokens_key, -took_tokens, MINUTE_TTL_S)
                        ticket.tokens_reserved -= took_tokens
                    return "budget"
                ticket.nano_reserved += nano
        except CounterError as exc:
            self._store_failed("extend", exc)
            return None if self.on_error == "open" else "budget"
        return None

    async def admit(
        self,
        key: ApiKey | None,
        *,
        tokens: int,
        cost_usd: float,
        small_cost_usd: float | None,
        downgrade: Collection[Downgrade] = _BUDGET_ONLY,
        costs: Mapping[str, float] | None = None,
    ) -> Ticket:
        """Reserve this request's share of `key`'s limits or raise GatewayError (429 or 503).

        `small_cost_usd` is the cost at the small tier when the policy may downgrade the request
        (None: it may not); `downgrade` says on which limits (`budget`, `rate`). `costs`, the
        estimated cost at each candidate deployment, lets `cover` top the reservation up before a
        fallback to a dearer one. What to reserve is the caller's choice
        (`policies.admission`); this only counts.
        """
        nano = {name: round(cost * NANO_USD) for name, cost in (costs or {}).items()}
        ticket = Ticket(key, costs=nano)
        if key is None:
            return ticket
        now = self._clock()
        try:
            refused = await self._rate(ticket, key, tokens, now, "")
            if refused is not None and "rate" in downgrade and small_cost_usd is not None:
                refused = await self._rate(ticket, key, tokens, now, ":small")
                if refused is None:
                    ticket.downgraded = "rate"
                    self.rate_downgraded += 1
                    cost_usd, small_cost_usd = small_cost_usd, None
            if refused is not None:
                self.rejected[refused[0]] += 1
                raise refused[1]
            if key.spec.budget_usd is not None:
                small = small_cost_usd if "budget" in downgrade else None
                await self._budget(ticket, key, now, cost_usd, small)
        except CounterError as exc:
            self._store_failed("admit", exc)
            if self.on_error == "closed":
                raise GatewayError(
                    503,
                    "rate-limit counters are unreachable, and this gateway fails closed",
                    code="limits_unavailable",
                    headers={"retry-after": "1"},
                ) from None
            return Ticket(key, costs=nano)  # fail open: nothing reserved, nothing to settle
        return ticket

    async def _rate(
        self, ticket: Ticket, key: ApiKey, tokens: int, now: float, scope: str
    ) -> tuple[str, GatewayError] | None:
        """Take one request and `tokens` from the key's rpm and tpm counters of `scope` (`""`:
        the main ones, `":small"`: the small tier's overflow). None when taken; else (the limit
        refused, its 429), with everything taken so far given back."""
        spec, minute, retry_after = key.spec, int(now // 60), 60 - now % 60
        if spec.rpm is not None:
            counter = f"rpm:{key.id}{scope}:{minute}"
            refused = await self._take(ticket, counter, 1, spec.rpm, "rpm", retry_after)
            if refused is not None:
                return "rpm", refused
        if spec.tpm is not None:
            counter = f"tpm:{key.id}{scope}:{minute}"
            refused = await self._take(ticket, counter, tokens, spec.tpm, "tpm", retry_after)
            if refused is not None:
                return "tpm", refused
            ticket.tokens_key, ticket.tokens_reserved = counter, tokens
        return None

    async def _take(
        self,
        ticket: Ticket,
        counter: str,
        amount: int,
        limit: int,
        reason: str,
        retry_after: float,
    ) -> GatewayError | None:
        taken, seen = await self.store.reserve(counter, amount, limit, MINUTE_TTL_S)
        if taken:
            ticket.undo.append((counter, amount, MINUTE_TTL_S))
            return None
        await self._give_back(ticket)
        what = "requests" if reason == "rpm" else "tokens"
        return GatewayError(
            429,
            f"key {ticket.key.id if ticket.key else ''!r} is over its {reason} limit of {limit} "
            f"{what} per minute ({seen} used, this request needs {amount})",
            code="rate_limit_exceeded",
            headers={"retry-after": retry_after_header(retry_after)},
        )

    async def _budget(
        self, ticket: Ticket, key: ApiKey, now: float, cost: float, small: float | None
    ) -> None:
        spec = key.spec
        assert spec.budget_usd is not None
        period, ttl, ends = _period(spec.budget_period, now)
        counter = f"usd:{key.id}:{period}"
        limit = round(spec.budget_usd * NANO_USD)
        for amount_usd, downgraded in ((cost, None), (small, "budget")):
            if amount_usd is None:
                continue
            amount = round(amount_usd * NANO_USD)
            taken, seen = await self.store.reserve(counter, amount, limit, ttl)
            if taken:
                ticket.usd_key, ticket.usd_ttl_s, ticket.nano_reserved = counter, ttl, amount
                if downgraded is not None:
                    ticket.downgraded = "budget"
                    self.downgraded += 1
                return
        await self._give_back(ticket)
        self.rejected["budget"] += 1
        raise GatewayError(
            429,
            f"key {key.id!r} has spent ${seen / NANO_USD:.6f} of its ${spec.budget_usd:g} "
            f"{_PERIOD_WORDS[spec.budget_period]} budget; this request may cost up to ${cost:.6f}",
            code="insufficient_quota",
            headers={"retry-after": retry_after_header(ends - now)},
        )

    async def _give_back(self, ticket: Ticket) -> None:
        for counter, amount, ttl in ticket.undo:
            await self.store.adjust(counter, -amount, ttl)
        ticket.undo.clear()

    def settle(self, ticket: Ticket, tokens: int, cost_usd: float) -> None:
        """Replace the reservation by what was used. Runs in the background: it is called when
        a stream ends, where nothing may wait on Redis."""
        if ticket.tokens_key is None and ticket.usd_key is None:
            return
        task = asyncio.get_running_loop().create_task(self._settle(ticket, tokens, cost_usd))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle(self, ticket: Ticket, tokens: int, cost_usd: float) -> None:
        try:
            if ticket.tokens_key is not None:
                delta = tokens - ticket.tokens_reserved
                if delta:
                    await self.store.adjust(ticket.tokens_key, delta, MINUTE_TTL_S)
            if ticket.usd_key is not None:
                delta = round(cost_usd * NANO_USD) - ticket.nano_reserved
                if delta:
                    await self.store.adjust(ticket.usd_key, delta, ticket.usd_ttl_s)
        except CounterError as exc:
            self._store_failed("settle", exc)

    async def usage(self, key: ApiKey) -> dict[str, float | int | None]:
        """What `key` has used in the current windows (for the admin endpoint)."""
        now = self._clock()
        minute = int(now // 60)
        period = _period(key.spec.budget_period, now)[0]
        return {
            "requests_this_minute": await self.store.get(f"rpm:{key.id}:{minute}"),
            "rpm": key.spec.rpm,
            "tokens_this_minute": await self.store.get(f"tpm:{key.id}:{minute}"),
            "tpm": key.spec.tpm,
            "spent_usd": await self.store.get(f"usd:{key.id}:{period}") / NANO_USD,
            "budget_usd": key.spec.budget_usd,
        }

    def _store_failed(self, during: str, exc: CounterError) -> None:
        self.store_errors += 1
        now = self._clock()
        if now - self._last_warned >= 60:
            self._last_warned = now
            log.warning(
                "limit counters unreachable during %s (%s); failing %s (%d errors so far)",
                during,
                exc,
                self.on_error,
                self.store_errors,
            )

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.store.aclose()


def _period(kind: Literal["day", "month"], now: float) -> tuple[str, int, float]:
    """(name, counter ttl, unix time the period ends) of the UTC day or month holding `now`."""
    t = time.gmtime(now)
    if kind == "day":
        start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
        return time.strftime("%Y-%m-%d", t), 2 * 86400, start + 86400.0
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    ends = calendar.timegm((year, month, 1, 0, 0, 0))
    return time.strftime("%Y-%m", t), 32 * 86400, float(ends)
