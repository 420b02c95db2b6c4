"""build_telemetry: which sinks a gateway gets from its settings, and what they start with."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.settings import Settings
from gateway.telemetry.prometheus import GatewayMetrics
from gateway.telemetry.requestlog import DB_FILENAME, RequestLog
from gateway.telemetry.sinks import build_telemetry
from tests.support.paths import REPO

CONFIG = REPO / "deploy" / "compose" / "tiergate.yaml"


async def test_default_bundle_is_metrics_then_log_and_a_metrics_route(tmp_path: Path) -> None:
    bundle = build_telemetry(
        Settings(config_path=CONFIG, log_dir=tmp_path / "logs"), load_config(CONFIG)
    )
    metrics, log = bundle.sinks
    assert isinstance(metrics, GatewayMetrics)
    assert isinstance(log, RequestLog)
    assert bundle.router is not None
    assert [r.path for r in bundle.router.routes] == ["/metrics"]  # type: ignore[attr-defined]
    assert (tmp_path / "logs" / DB_FILENAME).exists()
    # Every route the config allows exists at zero before the first request.
    assert (
        metrics.registry.get_sample_value(
            "tiergate_requests_total",
            {
                "policy": "cost-saver",
                "tier": "small",
                "deployment": "smollm2-local",
                "status": "ok",
            },
        )
        == 0
    )
    assert (
        metrics.registry.get_sample_value(
            "tiergate_cost_usd_total",
            {"policy": "none", "tier": "large", "deployment": "gpt-4o-mini"},
        )
        == 0
    )
    for sink in bundle.sinks:
        await sink.aclose()


@pytest.mark.parametrize(("request_log", "metrics"), [(False, True), (True, False)])
async def test_switches(tmp_path: Path, request_log: bool, metrics: bool) -> None:
    settings = Settings(
        config_path=CONFIG, log_dir=tmp_path, request_log=request_log, metrics=metrics
    )
    bundle = build_telemetry(settings)
    assert len(bundle.sinks) == (2 if request_log else 1)
    assert (bundle.router is not None) == metrics
    assert (tmp_path / DB_FILENAME).exists() == request_log
    for sink in bundle.sinks:
        await sink.aclose()


async def test_without_a_config_series_start_at_the_first_request(tmp_path: Path) -> None:
    bundle = build_telemetry(Settings(config_path=tmp_path / "missing.yaml", log_dir=tmp_path))
    metrics = bundle.sinks[0]
    assert isinstance(metrics, GatewayMetrics)
    assert (
        metrics.registry.get_sample_value(
            "tiergate_cost_usd_total",
            {"policy": "none", "tier": "large", "deployment": "gpt-4o-mini"},
        )
        is None
    )
    for sink in bundle.sinks:
        await sink.aclose()
