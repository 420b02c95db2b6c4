"""The Grafana dashboard as the tests read it: the file, and every query in it with an id."""

from __future__ import annotations

import json
from typing import Any

from tests.support.paths import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "tiergate.json"


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


QUERIES = [
    (f"{p['title']} [{t['refId']}]", t["expr"]) for p in dashboard()["panels"] for t in p["targets"]
]
"""(panel title [refId], PromQL) for every query of every panel."""
