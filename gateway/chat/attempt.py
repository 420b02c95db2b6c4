"""Trying a request's candidate deployments in order until one answers.

For each candidate, in the order the plan gives: a deployment that cannot be called (its key is not
set) or that the caller's budget cannot pay for is skipped; one whose circuit is open, or that has
no free slot, is refused at once (`Refused`, `gateway.reliability`); otherwise it is attempted
holding a slot: an attempt that exceeds its deployment's first-byte or total timeout becomes
`UpstreamError("timeout")`, a failure the error-kind table marks as retried is retried on the same
deployment after a jittered backoff (`gateway.reliability.backoff`) while its `retries` allow and
its circuit stays closed, and every outcome is reported to the deployment's breaker. A failure that
does not fall back (a 4xx: the request itself is wrong) ends the walk; any other moves on to the
next candidate. All of it happens before the first byte reaches the client: after it, the answer
belongs to the deployment that started it (`gateway.chat.stream`).

When no candidate answered, `Exhausted` is the client's error: its status and `Retry-After` follow
from the failure kinds (429 `rate_limit_exceeded` with an integer `Retry-After` when every
deployment that could be tried was rate limited).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from gateway.access.quota import Quota, Ticket
from gateway.chat.ledger import Failures, Ledger
from gateway.chat.stream import StreamRelay
from gateway.protocol.errors import GatewayError, retry_after_header
from gateway.protocol.openai import JSON
from gateway.reliability.backoff import Backoff
from gateway.reliability.breaker import Breaker, Breakers
from gateway.reliability.concurrency import Concurrency, Slot
from gateway.upstream.base import Backend, Refused, Target, UpstreamCall, UpstreamError

log = logging.getLogger(__name__)

T = TypeVar("T")
RelayFactory = Callable[[Target, Backend], StreamRelay]
"""Builds the relay of one stream attempt on a target with its backend."""


@dataclass
class Answer:
    """A JSON answer and where it came from."""

    target: Target
    body: JSON
    failures: Failures
    upstream_s: float


@dataclass
class OpenStream:
    """A stream whose first chunk has arrived, with the slot and breaker of its deployment: the
    caller must hand both to one `StreamLease`, which releases them when the stream ends."""

    target: Target
    relay: StreamRelay
    slot: Slot
    breaker: Breaker
    failures: Failures
    started: float
    """`time.perf_counter()` when this deployment's attempts began."""


class Exhausted(GatewayError):
    """No candidate answered; `failures` says what each one did. Built by `exhausted`."""

    def __init__(
        self, failures: Failures, status: int, message: str, *, code: str, headers: dict[str, str]
    ) -> None:
        super().__init__(status, message, code=code, headers=headers)
        self.failures = failures


def finish_failed(ledger: Ledger, error: GatewayError) -> None:
    """Close `ledger` for a request that ends with `error`: what each candidate did first, when
    none answered, then the error the client gets."""
    if isinstance(error, Exhausted):
        ledger.exhausted(error.failures)
    ledger.failed(error)
    ledger.finish()


class Attempts:
    """The walk over a request's candidates; built once, shared by every request."""

    def __init__(
        self,
        backends: Mapping[str, Backend],
        breakers: Breakers,
        concurrency: Concurrency,
        quota: Quota,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self._backends = dict(backends)
        self._breakers = breakers
        self._concurrency = concurrency
        self._quota = quota
        self._backoff = backoff or Backoff()
        self.retries = 0
        """Attempts repeated on the same deployment, all deployments together (for metrics)."""

    async def complete(
        self,
        candidates: list[Target],
        ticket: Ticket | None,
        call: UpstreamCall | Callable[[Target], UpstreamCall],
    ) -> Answer:
        """The first JSON answer among `candidates`, or `Exhausted`. `call` is what is sent, or
        what is sent to a given deployment."""

        async def answer(target: Target) -> JSON:
            backend = self._backends[target.deployment.backend]
            sent = call(target) if callable(call) else call
            slot = await self._slot(target)
            try:
                # A JSON answer's first byte is the whole answer: only the total timeout.
                return await self._attempts(
                    target,
                    functools.partial(backend.complete, target, sent),
                    target.deployment.timeout_s,
                )
            finally:
                slot.release()

        target, body, failures, started = await self._first(candidates, ticket, answer)
        return Answer(target, body, failures, time.perf_counter() - started)

    async def open_stream(
        self, candidates: list[Target], ticket: Ticket | None, relay_for: RelayFactory
    ) -> OpenStream:
        """The first stream among `candidates` whose first chunk arrives, or `Exhausted`."""

        async def first_chunk(target: Target) -> tuple[StreamRelay, Slot]:
            dep, backend = target.deployment, self._backends[target.deployment.backend]

            async def attempt() -> StreamRelay:
                relay = relay_for(target, backend)
                await relay.open(total_timeout_s=dep.timeout_s)
                return relay

            slot = await self._slot(target)
            try:
                relay = await self._attempts(
                    target, attempt, dep.first_byte_timeout_s or dep.timeout_s
                )
            except BaseException:
                slot.release()
                raise
            return relay, slot

        target, (relay, slot), failures, started = await self._first(
            candidates, ticket, first_chunk
        )
        breaker = self._breakers[target.name]
        return OpenStream(target, relay, slot, breaker, failures, started)

    async def _first(
        self,
        candidates: list[Target],
        ticket: Ticket | None,
        attempt: Callable[[Target], Awaitable[T]],
    ) -> tuple[Target, T, Failures, float]:
        """(target, what `attempt` returned, the failures before it, `perf_counter()` when its
        attempt began) for the first candidate whose attempt succeeds; `Exhausted` if none."""
        failures: Failures = []
        for target in candidates:
            if (skip := await self._skip(ticket, target)) is not None:
                failures.append((target.name, skip))
                continue
            started = time.perf_counter()
            try:
                result = await attempt(target)
            except UpstreamError as exc:
                log_failure(target.name, exc)
                failures.append((target.name, exc))
                if not exc.falls_back:
                    break
                continue
            return target, result, failures, started
        raise exhausted(failures)

    async def _skip(self, ticket: Ticket | None, target: Target) -> UpstreamError | None:
        """Why `target` is not even tried: its key is not set, or the budget cannot pay for it."""
        if not target.available:
            return unavailable(target)
        if ticket is not None and not await self._quota.cover(ticket, target.name):
            return Refused("over_budget", "the key's budget cannot pay for it", retry_after=60)
        return None

    async def _slot(self, target: Target) -> Slot:
        """A slot on `target`, or `Refused` when its circuit is open or it has none free."""
        self._breakers[target.name].check(target.name)
        return await self._concurrency[target.name].acquire()

    async def _attempts(
        self, target: Target, call: Callable[[], Awaitable[T]], first_byte_s: float
    ) -> T:
        breaker = self._breakers[target.name]
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(first_byte_s):
                    result = await call()
            except TimeoutError:
                error = UpstreamError(
                    "timeout", f"{target.name} sent no answer within {first_byte_s:g}s"
                )
            except UpstreamError as exc:
                error = exc
            else:
                breaker.success()
                return result
            breaker.failure(error)
            delay = None
            if attempt < target.deployment.retries and breaker.state == "closed":
                delay = self._backoff.delay(attempt, error)
            if delay is None:
                raise error
            attempt += 1
            self.retries += 1
            log.info("%s failed (%s); retry %d in %.2fs", target.name, error.kind, attempt, delay)
            await asyncio.sleep(delay)


def exhausted(failures: Failures) -> Exhausted:
    """The client's error for a request no deployment could answer."""
    if not failures:
        message = "no deployment is configured for this route"
        return Exhausted(failures, 503, message, code="no_route", headers={})
    last_name, last = failures[-1]
    tried = "; ".join(
        f"{n}: {describe(e)}" + (f" ({e.message})" if isinstance(e, Refused) else "")
        for n, e in failures
    )
    headers = {"x-tiergate-fallback": fallback_header(failures)}
    if last.kind == "unencodable":
        # Nothing was sent: the request cannot be encoded for any upstream.
        return Exhausted(
            failures, 400, f"{last_name}: {last.message}", code="invalid_request", headers=headers
        )
    if last.kind == "client_error" and last.status is not None:
        # The upstream refused the request itself: the client must change it, not retry.
        return Exhausted(
            failures,
            last.status,
            f"{last_name} rejected the request: {last.message}",
            code="upstream_rejected",
            headers=headers,
        )
    if rate_limited(failures):
        # Every deployment that could be tried said 429: the client should back off and come
        # back, which is what OpenAI's SDKs do for a 429 (`RateLimitError`), not for a 502.
        known = [
            e.retry_after
            for _, e in failures
            if e.kind == "rate_limited" and e.retry_after is not None
        ]
        headers["retry-after"] = retry_after_header(min(known)) if known else "1"
        return Exhausted(
            failures,
            429,
            f"every deployment is rate limited ({tried}); retry after {headers['retry-after']}s",
            code="rate_limit_exceeded",
            headers=headers,
        )
    if all(e.kind == "unavailable" for _, e in failures):
        waits = [e.retry_after for _, e in failures if e.retry_after is not None]
        if waits:
            headers["retry-after"] = retry_after_header(min(waits))
        return Exhausted(
            failures,
            503,
            f"no deployment can be reached ({tried})",
            code="no_deployment_available",
            headers=headers,
        )
    status = 504 if last.kind == "timeout" else 502
    return Exhausted(
        failures,
        status,
        f"every deployment failed ({tried})",
        code=f"upstream_{last.kind}",
        headers=headers,
    )


def rate_limited(failures: Failures) -> bool:
    """Every deployment that was tried answered 429; the others could not be tried at all (no
    key, open circuit, no slot, no budget), so a rate limit is what stands between the client
    and an answer."""
    kinds = {e.kind for _, e in failures}
    return "rate_limited" in kinds and kinds <= {"rate_limited", "unavailable"}


def describe(error: UpstreamError) -> str:
    """`circuit_open` / `at_capacity` / `over_budget` for refusals, the error kind otherwise."""
    return error.reason if isinstance(error, Refused) else error.kind


def fallback_header(failures: Failures) -> str:
    return ", ".join(f"{n}={describe(e)}" for n, e in failures)


def log_failure(name: str, exc: UpstreamError) -> None:
    # A refusal (open circuit, full queue) repeats for every request while it lasts: the breaker
    # logs when it opens, so each skip is only worth a debug line.
    if exc.kind == "auth_failed":
        log.error(
            "%s refused the gateway's credentials (%s): check its api_key_env and what the "
            "key may use (%s)",
            name,
            exc.status,
            exc.detail,
        )
        return
    level = logging.DEBUG if isinstance(exc, Refused) else logging.WARNING
    log.log(level, "%s failed (%s): %s", name, exc.kind, exc.detail)


def unavailable(target: Target) -> UpstreamError:
    """A deployment whose API key is not set: it cannot be called at all."""
    return UpstreamError(
        "unavailable", f"{target.deployment.api_key_env} is not set, so {target.name} is off"
    )
