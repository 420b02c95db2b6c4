"""Trying one deployment well: circuit, concurrency slot, timeouts, retries with backoff.

The chat service walks a request's candidate deployments in the policy's fallback order; for each it
asks this module to make the attempt. Here a deployment whose circuit is open or whose queue is full
is refused at once (`Refused`, so the service moves on), an attempt that exceeds its deployment's
first-byte or total timeout becomes `UpstreamError("timeout")`, a failure worth retrying is retried
on the same deployment after a jittered backoff (`gateway.reliability.backoff`), and every outcome
is reported to the deployment's breaker. All of it happens before the first byte reaches the client;
a stream's later life is the relay's (`gateway.chat.stream`), which reports back through
`stream_done`.

Also here: the error a client gets when every candidate failed, since its status and `Retry-After`
follow from the same failure kinds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from gateway.chat.stream import StreamRelay
from gateway.config import Deployment
from gateway.protocol.errors import GatewayError
from gateway.reliability.backoff import Backoff
from gateway.reliability.breaker import STATES, Breaker, build_breakers
from gateway.reliability.concurrency import Slots, build_slots
from gateway.telemetry.record import RequestRecord
from gateway.upstream.base import Refused, Target, UpstreamError

log = logging.getLogger(__name__)

T = TypeVar("T")
Failures = list[tuple[str, UpstreamError]]


class Resilience:
    def __init__(
        self,
        deployments: Mapping[str, Deployment],
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.breakers: dict[str, Breaker] = build_breakers(deployments, clock)
        self.slots: dict[str, Slots] = build_slots(deployments)
        self.backoff = backoff or Backoff()
        self.retries = 0
        """Attempts repeated on the same deployment, all deployments together (for metrics)."""

    def circuits(self) -> dict[str, str]:
        return {name: b.state for name, b in self.breakers.items()}

    async def complete(self, target: Target, call: Callable[[], Awaitable[T]]) -> T:
        """One deployment's JSON answer, or UpstreamError (Refused when it was not even tried)."""
        dep = target.deployment
        self.breakers[target.name].check(target.name)
        slots = self.slots[target.name]
        await slots.acquire()
        try:
            # A JSON answer's first byte is the whole answer: only the total timeout applies.
            return await self._attempts(target, call, dep.timeout_s)
        finally:
            slots.release()

    async def open_stream(self, target: Target, make: Callable[[], StreamRelay]) -> StreamRelay:
        """A relay whose first chunk has arrived. The caller owns the returned relay's slot and
        must call `stream_done` once when the stream ends, however it ends."""
        dep = target.deployment
        self.breakers[target.name].check(target.name)
        slots = self.slots[target.name]
        await slots.acquire()

        async def attempt() -> StreamRelay:
            relay = make()
            await relay.open(total_timeout_s=dep.timeout_s)
            return relay

        try:
            return await self._attempts(target, attempt, dep.first_byte_timeout_s or dep.timeout_s)
        except BaseException:
            slots.release()
            raise

    def stream_done(self, name: str, relay: StreamRelay) -> None:
        self.slots[name].release()
        if relay.error is not None and not relay.client_aborted:
            self.breakers[name].failure(relay.error)

    async def _attempts(
        self, target: Target, call: Callable[[], Awaitable[T]], first_byte_s: float
    ) -> T:
        breaker = self.breakers[target.name]
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
                delay = self.backoff.delay(attempt, error)
            if delay is None:
                raise error
            attempt += 1
            self.retries += 1
            log.info("%s failed (%s); retry %d in %.2fs", target.name, error.kind, attempt, delay)
            await asyncio.sleep(delay)


def exhausted_error(rec: RequestRecord, failures: Failures) -> GatewayError:
    """The error for a request no deployment could answer; fills the record's error fields."""
    if not failures:
        return GatewayError(503, "no deployment is configured for this route", code="no_route")
    last_name, last = failures[-1]
    rec.fallback_reason = failures[0][1].kind if len(failures) > 1 else None
    rec.error_kind = last.kind
    tried = "; ".join(
        f"{n}: {describe(e)}" + (f" ({e.message})" if isinstance(e, Refused) else "")
        for n, e in failures
    )
    headers = {"x-tiergate-fallback": fallback_header(failures)}
    if last.kind == "client_error" and last.status is not None:
        # The upstream refused the request itself: the client must change it, not retry.
        return GatewayError(
            last.status,
            f"{last_name} rejected the request: {last.message}",
            code="upstream_rejected",
            headers=headers,
        )
    if all(e.kind == "unavailable" for _, e in failures):
        waits = [e.retry_after for _, e in failures if e.retry_after is not None]
        if waits:
            headers["retry-after"] = str(max(1, round(min(waits))))
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


def describe(error: UpstreamError) -> str:
    """`circuit_open` / `at_capacity` for refusals, the error kind otherwise."""
    return error.reason if isinstance(error, Refused) else error.kind


def fallback_header(failures: Failures) -> str:
    return ", ".join(f"{n}={describe(e)}" for n, e in failures)


def log_failure(name: str, exc: UpstreamError) -> None:
    # A refusal (open circuit, full queue) repeats for every request while it lasts: the breaker
    # logs when it opens, so each skip is only worth a debug line.
    level = logging.DEBUG if isinstance(exc, Refused) else logging.WARNING
    log.log(level, "%s failed (%s): %s", name, exc.kind, exc.message)


def unavailable(target: Target) -> UpstreamError:
    """A deployment whose API key is not set: it cannot be called at all."""
    return UpstreamError(
        "unavailable", f"{target.deployment.api_key_env} is not set, so {target.name} is off"
    )


__all__ = [
    "STATES",
    "Failures",
    "Resilience",
    "exhausted_error",
    "fallback_header",
    "log_failure",
    "unavailable",
]
