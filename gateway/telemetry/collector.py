"""Prometheus series for the reliability machinery: circuits, retries, queues, limits, counters.

A custom collector read at scrape time from the live objects that own the numbers (the breakers, the
deployments' slots, the attempts' retry count, the quota), registered on the app's own registry next
to `gateway.telemetry.prometheus`, so nothing is counted twice and nothing here needs a hook in the
request path. Label values are deployment names from the config and a fixed set of reasons, so the
number of series is bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.access.quota import Quota
from gateway.reliability.breaker import STATES, Breakers
from gateway.reliability.concurrency import Concurrency

REJECTION_REASONS = ("rpm", "tpm", "budget")


class ReliabilityCollector(Collector):
    def __init__(
        self,
        breakers: Breakers,
        concurrency: Concurrency,
        quota: Quota,
        retries: Callable[[], int],
    ) -> None:
        self._breakers = breakers
        self._concurrency = concurrency
        self._quota = quota
        self._retries = retries
        """Attempts repeated on the same deployment so far (`Attempts.retries`)."""

    def collect(self) -> Iterator[Metric]:
        quota = self._quota
        state = GaugeMetricFamily(
            "tiergate_circuit_state",
            "1 for the state each deployment's circuit breaker is in (closed, open, half_open).",
            labels=("deployment", "state"),
        )
        opened = CounterMetricFamily(
            "tiergate_circuit_opened",
            "Times each deployment's circuit opened after repeated failures.",
            labels=("deployment",),
        )
        refused = CounterMetricFamily(
            "tiergate_queue_refused",
            "Requests a deployment could not take: concurrency limit and queue full, or queue "
            "timeout.",
            labels=("deployment",),
        )
        for breaker in self._breakers:
            name, current = breaker.name, breaker.state
            for s in STATES:
                state.add_metric((name, s), 1.0 if s == current else 0.0)
            opened.add_metric((name,), float(breaker.opened))
            refused.add_metric((name,), float(self._concurrency[name].refused))
        yield state
        yield opened
        yield refused
        yield CounterMetricFamily(
            "tiergate_upstream_retries",
            "Attempts repeated on the same deployment after a failure, before any fallback.",
            value=float(self._retries()),
        )
        rejected = CounterMetricFamily(
            "tiergate_limit_rejections",
            "Requests refused with 429 because their key was over a limit, by limit.",
            labels=("reason",),
        )
        for reason in REJECTION_REASONS:
            rejected.add_metric((reason,), float(quota.rejected[reason]))
        yield rejected
        yield CounterMetricFamily(
            "tiergate_budget_downgrades",
            "Requests sent to the small tier because the key's budget could not pay the large one.",
            value=float(quota.downgraded),
        )
        yield CounterMetricFamily(
            "tiergate_rate_downgrades",
            "Requests sent to the small tier because the key was over its rpm or tpm and the "
            "policy says `on_over_rate: downgrade`.",
            value=float(quota.rate_downgraded),
        )
        yield CounterMetricFamily(
            "tiergate_limit_store_errors",
            "Failed calls to the rate-limit counter store (Redis); the configured fail mode "
            "applied.",
            value=float(quota.store_errors),
        )
