"""Readiness: can each tier reach at least one deployment right now?

A deployment counts as reachable when its key (if it needs one) is set, its circuit is not open
(it asks the breakers, `gateway.reliability.breaker`) and, if it has an `api_base`, its `/models`
endpoint answers below 500 within two seconds. Hosted providers without an `api_base` are not
probed: a probe would cost a request against someone's quota. `Readiness` is what `/ready` asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from gateway.config import GatewayConfig
from gateway.reliability.breaker import Breakers
from gateway.upstream.base import Target

PROBE_TIMEOUT_S = 2.0


async def probe(client: httpx.AsyncClient, target: Target) -> tuple[bool, str]:
    if not target.available:
        return False, f"{target.deployment.api_key_env} is not set"
    base = target.deployment.api_base
    if base is None:
        return True, "key set (hosted provider, not probed)"
    headers = {"authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    try:
        response = await client.get(
            base.rstrip("/") + "/models", headers=headers, timeout=PROBE_TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        return False, f"{base} unreachable: {type(exc).__name__}"
    if response.status_code >= 500:
        return False, f"{base}/models answered {response.status_code}"
    return True, "reachable"


async def readiness(
    client: httpx.AsyncClient,
    config: GatewayConfig,
    targets: Mapping[str, Target],
    circuits: Mapping[str, str] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """(ready, report): ready when every tier has at least one reachable deployment. A deployment
    whose circuit is open (see `gateway.reliability.breaker`) is not reachable, whatever its
    probe says."""
    names = list(targets)
    results = await asyncio.gather(*(probe(client, targets[n]) for n in names))
    status = dict(zip(names, results, strict=True))
    circuits = circuits or {}
    tiers: dict[str, Any] = {}
    for tier_name, tier in config.tiers.items():
        deps: dict[str, dict[str, Any]] = {}
        for n in tier.deployments:
            circuit = circuits.get(n, "closed")
            reachable, detail = status[n]
            if circuit == "open":
                reachable, detail = False, "circuit open after repeated failures"
            deps[n] = {"reachable": reachable, "detail": detail, "circuit": circuit}
        tiers[tier_name] = {
            "available": any(d["reachable"] for d in deps.values()),
            "deployments": deps,
        }
    ready = all(t["available"] for t in tiers.values())
    return ready, {"status": "ready" if ready else "degraded", "tiers": tiers}


class Readiness:
    """The answer to `/ready`, from the deployments and their breakers; built once per app."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: GatewayConfig,
        targets: Mapping[str, Target],
        breakers: Breakers,
    ) -> None:
        self._client = client
        self._config = config
        self._targets = dict(targets)
        self._breakers = breakers

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """(ready, report) now; see `readiness`."""
        return await readiness(self._client, self._config, self._targets, self._breakers.states())
