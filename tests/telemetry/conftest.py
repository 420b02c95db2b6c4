"""Fixtures for the telemetry tests: synthetic records, and one real Prometheus per session."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gateway.telemetry.record import RequestRecord
from tests.telemetry.prom import PrometheusServer

REPO = Path(__file__).resolve().parents[2]
_ids = itertools.count()


def make_record(**overrides: Any) -> RequestRecord:
    """A routed, answered chat request to the small tier; override what a test is about."""
    base = RequestRecord(
        request_id=f"req-{next(_ids)}",
        started_at=time.time(),
        endpoint="chat",
        api_key_id="key-1",
        policy="balanced",
        p_strong=0.3,
        threshold=0.5,
        decision_reason="score",
        intended_tier="small",
        served_tier="small",
        deployment="smol",
        prompt_tokens=11,
        completion_tokens=7,
        cost_usd=0.0001,
        counterfactual_cost_usd=0.001,
        latency_s=0.2,
        upstream_latency_s=0.19,
        router_s=0.004,
        overhead_s=0.006,
    )
    return replace(base, **overrides)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
