"""Builds the telemetry sinks the chat service reports to, and the routes they need.

This module owns the wiring only: one `GatewayMetrics` (its own registry, served at `/metrics`)
and, unless `settings.request_log` is off, one `RequestLog` writing to the gateway's database
(`gateway.storage`: SQLite in `settings.log_dir` by default, or the request-log URL's Postgres)
whose lost rows are counted by those metrics. The app factory calls `build_telemetry` once at
start-up and `aclose` on every sink at shutdown, which writes the rows still queued.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from fastapi import APIRouter

from gateway.config import GatewayConfig
from gateway.settings import Settings
from gateway.storage import Database, DatabaseURL, open_request_writer, resolve
from gateway.telemetry.record import Telemetry


@dataclass
class TelemetryBundle:
    sinks: list[Telemetry] = field(default_factory=list)
    router: APIRouter | None = None
    """Extra HTTP routes (such as `/metrics`) the app mounts."""


def database_url(settings: Settings, config: GatewayConfig | None = None) -> DatabaseURL:
    """The gateway's database: TIERGATE_REQUEST_LOG_URL, else the config's, else SQLite."""
    configured = config.request_log_url if config is not None else None
    return resolve(settings.request_log_url, configured, settings.log_dir)


def build_telemetry(
    settings: Settings, config: GatewayConfig | None = None, database: Database | None = None
) -> TelemetryBundle:
    """Sinks in the order the service should call them: metrics first (cheapest), then the log.

    The log writes to `database` (the app's, already migrated) or, without one, to the database
    the settings and config name. A log directory that cannot be created or written, or a database
    that cannot be reached, fails here, at start, not at a request.
    """
    from gateway.telemetry.prometheus import GatewayMetrics, metrics_router
    from gateway.telemetry.requestlog import RequestLog, RowWriter

    bundle = TelemetryBundle()
    metrics = GatewayMetrics()
    if config is not None:
        metrics.preinitialize(
            _routes(config), tiers=config.tier_order(), categories=list(config.routes)
        )
    bundle.sinks.append(metrics)
    if settings.metrics:
        bundle.router = metrics_router(metrics)
    if settings.request_log:
        if database is not None:
            writer: RowWriter = database.request_writer()
        else:
            writer = open_request_writer(database_url(settings, config))
        log = RequestLog(
            writer,
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
