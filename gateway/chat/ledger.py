"""The ledger: the one writer of a request's `RequestRecord`, from its opening to its one report.

A ledger is opened (built) once per accepted request, which tells every sink a request started,
takes each fact as it becomes known through a method named for it (the plan, the deployment that
served, the upstream's time, the usage and its cost, how a stream ended, why the request failed),
and is finished once: `finish` stamps the latency, settles the key's quota ticket with what was
really used, and hands the record to every sink. A second `finish` does nothing, so every path that
can end a request (an answer, an error, a stream's end, a client that leaves) may call it.

Other modules read `record`; they never write it. A fact that arrives after `finish` is dropped.

`fallback_reason` follows ONE rule (`fallback_reason` below): it is the error kind of the first
deployment that failed, recorded when the request went on from that failure to another deployment,
whether that one answered or failed too. A request whose only candidate failed did not fall back.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Concatenate, ParamSpec

from gateway.access.quota import Quota, Ticket
from gateway.config import Price
from gateway.protocol.errors import GatewayError
from gateway.telemetry.record import RequestRecord, Telemetry
from gateway.upstream.base import UpstreamError
from policies import Decision, TierName
from router import RouteMatch

log = logging.getLogger(__name__)

NO_CATEGORY = "none"
"""The category of a request no operator route claimed (header, log, metric label)."""

Failures = list[tuple[str, UpstreamError]]
"""The deployments a request tried (or skipped) without an answer, in order, and why."""

P = ParamSpec("P")


def _until_finished(
    fact: Callable[Concatenate[Ledger, P], None],
) -> Callable[Concatenate[Ledger, P], None]:
    """A fact that arrives after `finish` is dropped: the sinks already hold the record (the
    request log writes it from another thread), so it must not change under them."""

    def record(ledger: Ledger, /, *args: P.args, **kwargs: P.kwargs) -> None:
        if not ledger.finished:
            fact(ledger, *args, **kwargs)

    return functools.update_wrapper(record, fact)


def fallback_reason(failures: Failures, answered: bool) -> str | None:
    """THE rule: the first failure's kind when the request went on from it to another deployment.

    After an answer, any failure before it means a fallback happened. Without one, the request
    moved on only if a second deployment was tried after the first failed.
    """
    moved_on = len(failures) >= (1 if answered else 2)
    return failures[0][1].kind if moved_on else None


REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
"""A client's `x-request-id` the gateway keeps (and echoes, and logs): at most 128 characters of
a charset that is safe in a header, a log line and a URL. Anything else gets a fresh id."""


def accepted_request_id(sent: str | None) -> str | None:
    """The client's `x-request-id` if it is short and plain (`REQUEST_ID`), else None."""
    if sent is None or REQUEST_ID.fullmatch(sent) is None:
        return None
    return sent


class Ledger:
    """One request's record, opened by the constructor (every sink hears that a request started)
    and written through the methods below until `finish`."""

    def __init__(
        self,
        sinks: Sequence[Telemetry],
        quota: Quota,
        large_price: Price,
        *,
        request_id: str | None,
        endpoint: str,
        api_key_id: str | None,
        stream: bool,
    ) -> None:
        """`request_id` is the client's `x-request-id` (kept when `accepted_request_id` takes it;
        else, or when None, a fresh one); `large_price` prices the counterfactual (the same tokens
        on the most capable tier)."""
        self._sinks = sinks
        self._quota = quota
        self._large_price = large_price
        self._started = time.perf_counter()
        self._ticket: Ticket | None = None
        self._finished = False
        self._rec = RequestRecord(
            request_id=accepted_request_id(request_id) or f"req-{uuid.uuid4().hex[:24]}",
            started_at=time.time(),
            endpoint=endpoint,
            api_key_id=api_key_id,
            stream=stream,
        )
        for sink in sinks:
            sink.request_started()

    @property
    def record(self) -> RequestRecord:
        """The record so far, to read (response headers): only this module writes it."""
        return self._rec

    @property
    def request_id(self) -> str:
        return self._rec.request_id

    @property
    def finished(self) -> bool:
        return self._finished

    # --- the plan -------------------------------------------------------------------------------

    @_until_finished
    def direct(self, tier: TierName | None) -> None:
        """The client named a deployment: no routing decision was made."""
        self._rec.decision_reason = "direct"
        self._rec.intended_tier = tier

    @_until_finished
    def classified(
        self,
        policy: str,
        p_strong: float,
        router_s: float,
        match: RouteMatch | None,
        pii: tuple[str, ...],
    ) -> None:
        """What the policy decides on: the score, the operator route (`match` None: no routes
        configured; its category None: no route was confident) and the kinds of personal data
        found (never the data)."""
        rec = self._rec
        rec.policy, rec.p_strong, rec.router_s = policy, p_strong, router_s
        if match is not None:
            rec.category = match.category or NO_CATEGORY
            rec.category_probability = match.probability
        rec.pii = ",".join(pii) or None

    @_until_finished
    def refused(self, reason: str) -> None:
        """The policy refused the request (`reason`: the rule that left no tier to serve it)."""
        self._rec.decision_reason = reason

    @_until_finished
    def routed(self, decision: Decision, router_s: float) -> None:
        """A policy decided the tier, from a score that took `router_s` to compute."""
        rec = self._rec
        rec.router_s = router_s
        rec.policy, rec.p_strong = decision.policy, decision.p_strong
        rec.threshold = decision.threshold
        rec.decision_reason, rec.intended_tier = decision.reason, decision.tier

    @_until_finished
    def holds(self, ticket: Ticket) -> None:
        """The key's quota reservation, settled by `finish` with what was used."""
        self._ticket = ticket

    # --- the answer -----------------------------------------------------------------------------

    @_until_finished
    def served(self, deployment: str, tier: TierName | None, failures: Failures) -> None:
        """`deployment` answered, after `failures`."""
        rec = self._rec
        rec.deployment, rec.served_tier = deployment, tier
        rec.fallback_reason = fallback_reason(failures, answered=True)

    @_until_finished
    def first_byte(self) -> None:
        """A stream's first chunk is ready for the client."""
        self._rec.ttft_s = time.perf_counter() - self._started

    @_until_finished
    def upstream(self, seconds: float) -> None:
        """Time spent on the deployment that served: the gateway's overhead is the rest."""
        self._rec.upstream_latency_s = seconds

    @_until_finished
    def usage(self, price: Price, prompt: int, completion: int, *, estimated: bool) -> None:
        """Tokens used (`estimated`: counted by the gateway, not reported), priced at the serving
        deployment's `price` and, for the counterfactual, at the most capable tier's."""
        rec = self._rec
        rec.prompt_tokens, rec.completion_tokens = prompt, completion
        rec.tokens_estimated = estimated
        rec.cost_usd = price.cost(prompt, completion)
        rec.counterfactual_cost_usd = self._large_price.cost(prompt, completion)

    @_until_finished
    def stream_ended(
        self,
        *,
        client_aborted: bool,
        partial: bool,
        error: UpstreamError | None,
        cut: str | None = None,
    ) -> None:
        """How a stream ended: whole, cut by the upstream (`error`), ended by the gateway (`cut`:
        the error code its last event carried, such as `insufficient_quota` or
        `shutting_down`), or left by the client."""
        rec = self._rec
        rec.client_aborted, rec.partial = client_aborted, partial
        if error is not None:
            rec.error_kind = error.kind
        elif cut is not None:
            rec.error_kind = cut
        if client_aborted:
            rec.status_code = 499

    # --- no answer ------------------------------------------------------------------------------

    @_until_finished
    def exhausted(self, failures: Failures) -> None:
        """Every candidate failed (or none was left); the last failure is the request's."""
        self._rec.fallback_reason = fallback_reason(failures, answered=False)
        if failures:
            self._rec.error_kind = failures[-1][1].kind

    @_until_finished
    def failed(self, error: GatewayError) -> None:
        """The client gets `error`; an upstream's error kind, if one was recorded, stays."""
        self._rec.status_code = error.status
        self._rec.error_kind = self._rec.error_kind or error.code

    @_until_finished
    def aborted(self) -> None:
        """The server is going away with the request unanswered."""
        self._rec.status_code, self._rec.client_aborted = 499, True

    @_until_finished
    def crashed(self) -> None:
        """A bug of ours: still one record, and the envelope handler answers 500."""
        self._rec.status_code, self._rec.error_kind = 500, "internal"

    # --- the end --------------------------------------------------------------------------------

    def finish(self) -> None:
        """Stamp the latency, settle the quota ticket and report to every sink: once."""
        if self._finished:
            return
        self._finished = True
        rec = self._rec
        rec.latency_s = time.perf_counter() - self._started
        if rec.upstream_latency_s is not None:
            rec.overhead_s = max(0.0, rec.latency_s - rec.upstream_latency_s)
        if self._ticket is not None:
            used = rec.prompt_tokens + rec.completion_tokens
            self._quota.settle(self._ticket, used, rec.cost_usd)
        for sink in self._sinks:
            try:
                sink.record(rec)
            except Exception:  # telemetry must never cost a client its answer
                log.exception("telemetry sink %r failed", sink)
