"""Builds the telemetry sinks the chat service reports to, and the routes they need.

This module owns the wiring only: one `GatewayMetrics` (its own registry, served at `/metrics`)
and, unless `settings.request_log` is off, one SQLite `RequestLog` in `settings.log_dir` whose lost
rows are counted by those metrics. The app factory calls `build_telemetry` once at start-up and
`aclose` on every sink at shutdown, which writes the rows still queued.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter

from gateway.records import Telemetry
from gateway.settings import Settings


@dataclass
class TelemetryBundle:
    sinks: list[Telemetry] = field(default_factory=list)
    router: APIRouter | None = None
    """Extra HTTP routes (such as `/metrics`) the app mounts."""


def build_telemetry(settings: Settings) -> TelemetryBundle:
    """Sinks in the order the service should call them: metrics first (cheapest), then the log.

    A log directory that cannot be created or written fails here, at start, not at a request.
    """
    from gateway.metrics import GatewayMetrics, metrics_router
    from gateway.requestlog import DB_FILENAME, RequestLog

    bundle = TelemetryBundle()
    metrics = GatewayMetrics()
    bundle.sinks.append(metrics)
    if settings.metrics:
        bundle.router = metrics_router(metrics)
    if settings.request_log:
        log = RequestLog.open(
            settings.log_dir / DB_FILENAME,
            queue_size=settings.request_log_queue_size,
            on_written=metrics.count_log_rows,
            on_dropped=metrics.count_log_dropped,
        )
        bundle.sinks.append(log)
    return bundle
