"""Builds the telemetry sinks the chat service reports to, and the routes they need.

This module owns the wiring only: one `GatewayMetrics` (its own registry, served at `/metrics`)
and, unless `settings.request_log` is off, one SQLite `RequestLog` in `settings.log_dir` whose lost
rows are counted by those metrics. The app factory calls `build_telemetry` once at start-up and
`aclose` on every sink at shutdown, which writes the rows still queued.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from fastapi import APIRouter

from gateway.config import GatewayConfig
from gateway.settings import Settings
from gateway.telemetry.record import Telemetry


@dataclass
class TelemetryBundle:
    sinks: list[Telemetry] = field(default_factory=list)
    router: APIRouter | None = None
    """Extra HTTP routes (such as `/metrics`) the app mounts."""


def build_telemetry(settings: Settings, config: GatewayConfig | None = None) -> TelemetryBundle:
    """Sinks in the order the service should call them: metrics first (cheapest), then the log.

    A log directory that cannot be created or written fails here, at start, not at a request.
    """
    from gateway.telemetry.prometheus import GatewayMetrics, metrics_router
    from gateway.telemetry.requestlog import DB_FILENAME, RequestLog

    bundle = TelemetryBundle()
    metrics = GatewayMetrics()
    if config is not None:
        metrics.preinitialize(_routes(config))
    bundle.sinks.append(metrics)
    if settings.metrics:
        bundle.router = metrics_router(metrics)
    if settings.request_log:
        log = RequestLog.open(
            settings.log_dir / DB_FILENAME,
            queue_size=settings.request_log_queue_size,
            linger_s=settings.request_log_linger_s,
            on_written=metrics.count_log_rows,
            on_dropped=metrics.count_log_dropped,
        )
        bundle.sinks.append(log)
    return bundle


def _routes(config: GatewayConfig) -> Iterator[tuple[str | None, str, str]]:
    """Every (policy, tier, deployment) the config allows, None standing for direct requests:
    their series exist at zero from the start, so `rate()` sees each route's first request."""
    for tier_name, tier in config.tiers.items():
        for deployment in tier.deployments:
            yield None, tier_name, deployment
            for policy in config.policies:
                yield policy, tier_name, deployment
