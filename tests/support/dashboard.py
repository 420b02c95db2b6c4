"""The Grafana dashboard as the tests read it: the file, every query in it with an id, and the
reliability series the app exposes beside the metrics module's."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from gateway.access.counters import MemoryCounters
from gateway.access.quota import Quota
from gateway.config import Deployment
from gateway.reliability.breaker import Breakers
from gateway.reliability.concurrency import Concurrency
from gateway.telemetry.collector import ReliabilityCollector
from tests.support.paths import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "tiergate.json"


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


QUERIES = [
    (f"{p['title']} [{t['refId']}]", t["expr"]) for p in dashboard()["panels"] for t in p["targets"]
]
"""(panel title [refId], PromQL) for every query of every panel."""


def reliability_collector(names: Iterable[str]) -> ReliabilityCollector:
    """The gateway's reliability series (circuits, queues, retries, limits) for deployments
    `names`, all at rest: what the app registers beside its `GatewayMetrics`."""
    dead = "http://127.0.0.1:9/v1"
    deployments = {n: Deployment(model=f"openai/{n}", api_base=dead) for n in names}
    quota = Quota(MemoryCounters(), on_error="open")
    return ReliabilityCollector(Breakers(deployments), Concurrency(deployments), quota, lambda: 0)
