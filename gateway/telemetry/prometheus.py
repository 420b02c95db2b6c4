"""Prometheus metrics: what each finished request adds to the counters and histograms at `/metrics`.

This module owns the metric names (all prefixed `tiergate_`), their labels and buckets, and the
`GET /metrics` route. Every metric lives in a `CollectorRegistry` built per app, never in
prometheus-client's global registry, so a test process can build several apps side by side.

Label values come from the request record and so, indirectly, from clients (a policy or deployment
name that does not exist, a fallback reason with an upstream's message in it). Each label is
therefore capped: past `max_label_values` distinct values the rest are counted under `other`, so no
client can grow the number of series without bound. A missing value (a request refused before any
routing decision, say) is reported as `none`.

Several uvicorn workers: when `PROMETHEUS_MULTIPROC_DIR` is set before the process starts,
prometheus-client keeps every value in memory-mapped files in that directory and `/metrics` merges
all workers' files (prometheus-client's multiprocess mode; the directory must be emptied before the
workers start). Without it, run one worker per process and let Prometheus scrape each process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import get_args

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from gateway.settings import prometheus_multiproc_dir
from gateway.telemetry.record import RequestRecord
from gateway.upstream.base import ErrorKind
from policies.pii import BUILTIN_KINDS

logger = logging.getLogger(__name__)

NONE = "none"
OTHER = "other"

# Seconds. Whole requests to a large model can take a minute; a gateway's own overhead is
# sub-millisecond, so the two get their own scales.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))


STATUSES = ("ok", "partial", "aborted", "client_error", "error")
UPSTREAM_ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)
"""What a backend reports when a deployment fails; a request's `error_kind` otherwise names a
gateway error (`model_not_found`, `invalid_tier`, ...), which is the client's, not an upstream's."""


def request_status(rec: RequestRecord) -> str:
    """The `status` label: one of `ok`, `partial`, `aborted`, `client_error`, `error`.

    `aborted` (the client went away) is neither our error nor a success; `partial` is a stream the
    upstream cut after the first byte, answered with status 200 but not whole. Alert rules and the
    dashboard's error rate count `error` and `partial`.
    """
    if rec.client_aborted:
        return "aborted"
    if rec.status_code >= 500:
        return "error"
    if rec.status_code >= 400:
        return "client_error"
    if rec.partial:
        return "partial"
    return "ok"


class _LabelGuard:
    """Caps the distinct values each label may take, so series stay bounded whatever clients send.

    Thread-safe because the request log's writer thread reports drops through the same metrics.
    """

    def __init__(self, max_values: int) -> None:
        self._max = max_values
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, label: str, value: object) -> str:
        text = NONE if value is None or value == "" else str(value)
        seen = self._seen.get(label)
        if seen is not None and text in seen:
            return text
        with self._lock:
            seen = self._seen.setdefault(label, set())
            if text in seen:
                return text
            if len(seen) >= self._max:
                return OTHER
            seen.add(text)
            return text


class GatewayMetrics:
    """The Prometheus sink: a `Telemetry` whose state is the app's own registry.

    `record` only increments in-memory values (a few microseconds), so it is safe on the event loop.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, max_label_values: int = 64
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._label = _LabelGuard(max_label_values)
        self._live: list[Collector] = []
        r = self.registry
        self.requests = Counter(
            "tiergate_requests",
            "Requests accepted and finished, by policy, served tier, deployment and outcome.",
            ("policy", "tier", "deployment", "status"),
            registry=r,
        )
        self.route_decisions = Counter(
            "tiergate_route_decisions",
            "Routing decisions: the tier the policy chose, the tier that served, why, and the "
            "operator route the classifier named (none: no route was confident).",
            ("policy", "intended_tier", "served_tier", "reason", "category"),
            registry=r,
        )
        self.pii_requests = Counter(
            "tiergate_pii_requests",
            "Routed requests in which personal data of a kind was found (never the data).",
            ("policy", "kind"),
            registry=r,
        )
        self.prompt_tokens = Counter(
            "tiergate_prompt_tokens",
            "Prompt (input) tokens billed, by deployment.",
            ("deployment",),
            registry=r,
        )
        self.completion_tokens = Counter(
            "tiergate_completion_tokens",
            "Completion (output) tokens billed, by deployment, including partial streams.",
            ("deployment",),
            registry=r,
        )
        self.estimated_requests = Counter(
            "tiergate_tokens_estimated_requests",
            "Requests whose token counts were estimated because the upstream reported no usage.",
            ("deployment",),
            registry=r,
        )
        self.cost = Counter(
            "tiergate_cost_usd",
            "Cost in USD of what was served, by policy, tier and deployment.",
            ("policy", "tier", "deployment"),
            registry=r,
        )
        self.counterfactual_cost = Counter(
            "tiergate_counterfactual_cost_usd",
            "The same tokens priced at the policy's large tier; savings = this minus cost.",
            ("policy", "tier", "deployment"),
            registry=r,
        )
        self.latency = Histogram(
            "tiergate_request_latency_seconds",
            "Total time from accepting a request to its last byte.",
            ("tier", "deployment"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "tiergate_ttft_seconds",
            "Time to first token of streamed requests.",
            ("tier", "deployment"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_latency = Histogram(
            "tiergate_upstream_latency_seconds",
            "Time spent waiting on the upstream deployment that served the request.",
            ("deployment",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "tiergate_gateway_overhead_seconds",
            "Time the gateway itself added: total latency minus upstream time.",
            (),
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.router_time = Histogram(
            "tiergate_router_decision_seconds",
            "Time to score the request and decide its route.",
            (),
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.router_score = Histogram(
            "tiergate_router_score",
            "The router's p_strong for routed requests, in [0, 1].",
            ("policy",),
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "tiergate_fallbacks",
            "Requests served by another deployment than the first choice, by reason.",
            ("reason",),
            registry=r,
        )
        self.upstream_errors = Counter(
            "tiergate_upstream_errors",
            "Requests that ended in an upstream error, by deployment and error kind.",
            ("deployment", "kind"),
            registry=r,
        )
        self.in_flight = Gauge(
            "tiergate_requests_in_flight",
            "Requests accepted and not yet finished.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.log_rows = Counter(
            "tiergate_request_log_rows",
            "Rows written to the request log.",
            registry=r,
        )
        self.log_dropped = Counter(
            "tiergate_request_log_dropped",
            "Request-log rows lost: queue full (writer behind), failed write, log closed, or the "
            "database still away at shutdown.",
            ("reason",),
            registry=r,
        )
        for reason in ("queue_full", "write_error", "closed", "unavailable"):
            self.log_dropped.labels(reason=reason)
        from gateway.telemetry.quality import QualityMetrics

        self.quality = QualityMetrics(r, max_label_values=max_label_values)
        """Escalations, shadow verdicts and feedback, on this registry."""

    def preinitialize(
        self,
        routes: Iterable[tuple[str | None, str, str]],
        *,
        tiers: Sequence[str] = ("small", "large"),
        categories: Sequence[str] = (),
    ) -> None:
        """Create the series of every known (policy, tier, deployment) route at zero.

        Prometheus cannot tell that a series born at 1 started at 0, so `rate()` and `increase()`
        miss the first request of each route unless its series exists before it. Call this at
        start-up with the routes the config allows (policy None for direct requests), every tier
        and every operator route's category (`none` is added when there are any).
        """
        lab = self._label
        labels = [lab("category", c) for c in (*categories, NONE)] if categories else [NONE]
        for kind in UPSTREAM_ERROR_KINDS:
            self.fallbacks.labels(lab("fallback_reason", kind))
        for raw_policy, raw_tier, raw_deployment in routes:
            policy = lab("policy", raw_policy)
            tier, deployment = lab("tier", raw_tier), lab("deployment", raw_deployment)
            for kind in UPSTREAM_ERROR_KINDS:
                self.upstream_errors.labels(deployment, lab("error_kind", kind))
            for status in STATUSES:
                self.requests.labels(policy, tier, deployment, status)
            self.cost.labels(policy, tier, deployment)
            self.counterfactual_cost.labels(policy, tier, deployment)
            self.prompt_tokens.labels(deployment)
            self.completion_tokens.labels(deployment)
            self.latency.labels(tier, deployment)
            self.ttft.labels(tier, deployment)
            self.upstream_latency.labels(deployment)
            if raw_policy is not None:
                self.router_score.labels(policy)
                for kind in BUILTIN_KINDS:
                    self.pii_requests.labels(policy, lab("pii_kind", kind))
                for intended in tiers:
                    for category in labels:
                        self.route_decisions.labels(
                            policy, lab("tier", intended), tier, "score", category
                        )

    # --- Telemetry -----------------------------------------------------------------------------

    def request_started(self) -> None:
        self.in_flight.inc()

    def record(self, rec: RequestRecord) -> None:
        """Count one finished request. Never raises: metrics must not fail a request."""
        self.in_flight.dec()
        try:
            self._count(rec)
            self.quality.record(rec)
        except Exception:  # pragma: no cover - a bug here must not reach the client
            logger.exception("metrics: cannot count request %s", rec.request_id)

    async def aclose(self) -> None:
        return None

    # --- called by the request log ---------------------------------------------------------------

    def count_log_rows(self, n: int) -> None:
        self.log_rows.inc(n)

    def count_log_dropped(self, n: int, reason: str) -> None:
        self.log_dropped.labels(reason=reason).inc(n)

    # --- exposition ------------------------------------------------------------------------------

    def add_collector(self, collector: Collector) -> None:
        """A collector read at scrape time from live objects (circuits, queues): its series are
        this process's own, also in multiprocess mode."""
        self.registry.register(collector)
        self._live.append(collector)

    def remove_collector(self, collector: Collector) -> None:
        self.registry.unregister(collector)
        self._live.remove(collector)

    def render(self) -> bytes:
        """The text exposition format; every worker's values merged in multiprocess mode (plus
        the live collectors of the worker that answers: circuits and queues are per worker)."""
        path = prometheus_multiproc_dir()
        if path is not None:
            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=str(path))  # type: ignore[no-untyped-call]
            for collector in self._live:
                merged.register(collector)
            return bytes(generate_latest(merged))
        return bytes(generate_latest(self.registry))

    def _count(self, rec: RequestRecord) -> None:
        lab = self._label
        policy = lab("policy", rec.policy)
        tier = lab("tier", rec.served_tier)
        deployment = lab("deployment", rec.deployment)
        self.requests.labels(policy, tier, deployment, request_status(rec)).inc()
        if rec.intended_tier is not None or rec.decision_reason is not None:
            self.route_decisions.labels(
                policy,
                lab("tier", rec.intended_tier),
                tier,
                lab("reason", rec.decision_reason),
                lab("category", rec.category),
            ).inc()
        for kind in rec.pii.split(",") if rec.pii else ():
            self.pii_requests.labels(policy, lab("pii_kind", kind)).inc()
        if rec.prompt_tokens:
            self.prompt_tokens.labels(deployment).inc(rec.prompt_tokens)
        if rec.completion_tokens:
            self.completion_tokens.labels(deployment).inc(rec.completion_tokens)
        if rec.tokens_estimated:
            self.estimated_requests.labels(deployment).inc()
        # Counters cannot go down: a negative cost would be a pricing bug, never a refund.
        self.cost.labels(policy, tier, deployment).inc(max(rec.cost_usd, 0.0))
        self.counterfactual_cost.labels(policy, tier, deployment).inc(
            max(rec.counterfactual_cost_usd, 0.0)
        )
        if rec.served_tier is not None:
            self.latency.labels(tier, deployment).observe(rec.latency_s)
            if rec.ttft_s is not None:
                self.ttft.labels(tier, deployment).observe(rec.ttft_s)
        if rec.upstream_latency_s is not None and rec.deployment is not None:
            self.upstream_latency.labels(deployment).observe(rec.upstream_latency_s)
        if rec.overhead_s is not None:
            self.overhead.observe(rec.overhead_s)
        if rec.router_s is not None:
            self.router_time.observe(rec.router_s)
        if rec.p_strong is not None:
            self.router_score.labels(policy).observe(rec.p_strong)
        if rec.fallback_reason is not None:
            self.fallbacks.labels(lab("fallback_reason", rec.fallback_reason)).inc()
        if rec.error_kind in UPSTREAM_ERROR_KINDS and not rec.client_aborted:
            # Only the failure the request ended with: the record does not say which deployment
            # failed before a fallback (see `tiergate_fallbacks_total` for those).
            self.upstream_errors.labels(deployment, lab("error_kind", rec.error_kind)).inc()


def metrics_router(metrics: GatewayMetrics, path: str = "/metrics") -> APIRouter:
    """`GET /metrics` for Prometheus; kept out of the OpenAPI schema (it is not the product API)."""
    router = APIRouter()

    @router.get(path, include_in_schema=False)
    def scrape() -> Response:
        # A plain def: FastAPI runs it in a worker thread, so rendering never stalls the loop.
        return Response(content=metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


def metric_names(metrics: GatewayMetrics) -> Iterable[str]:
    """Every family this module registers (used by the README check)."""
    for family in metrics.registry.collect():
        yield family.name
