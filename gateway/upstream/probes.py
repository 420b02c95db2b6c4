"""Upstream status: can each tier reach at least one deployment right now? (`GET /status`)

A deployment counts as reachable when its key (if it needs one) is set, its circuit is not open
(it asks the breakers, `gateway.reliability.breaker`) and, if it has an `api_base`, its `/models`
endpoint answers below 500 within two seconds. Hosted providers without an `api_base` are not
probed: a probe would cost a request against someone's quota.

This is not readiness (`gateway.lifecycle.Readiness`, `/ready`): an upstream outage hits every
replica alike and must not take them all out of a load balancer. `UpstreamStatus` probes at most
once every `CACHE_S` seconds, however many callers ask (concurrent callers share one round of
probes), and says the details (which deployment, why) only to an admin; anyone else gets counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from gateway.config import GatewayConfig
from gateway.reliability.breaker import Breakers
from gateway.upstream.base import Target

PROBE_TIMEOUT_S = 2.0
CACHE_S = 5.0
"""How long one round of probes answers `/status`: fifty calls a second make one round."""

Probes = dict[str, tuple[bool, str]]


async def probe(client: httpx.AsyncClient, target: Target) -> tuple[bool, str]:
    """(reachable, why): a word an operator can act on, without the deployment's URL or key."""
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
    except httpx.TimeoutException:
        return False, f"/models did not answer within {PROBE_TIMEOUT_S:g}s"
    except httpx.HTTPError:
        return False, "unreachable (no connection)"
    if response.status_code >= 500:
        return False, f"/models answered {response.status_code}"
    return True, "reachable"


def report(
    config: GatewayConfig, probes: Probes, circuits: Mapping[str, str], *, detailed: bool
) -> tuple[bool, dict[str, Any]]:
    """(every tier can reach a deployment, the report): per deployment when `detailed`, else
    counts per tier."""
    tiers: dict[str, Any] = {}
    for tier_name, tier in config.tiers.items():
        deps: dict[str, dict[str, Any]] = {}
        for n in tier.deployments:
            circuit = circuits.get(n, "closed")
            reachable, detail = probes[n]
            if circuit == "open":
                reachable, detail = False, "circuit open after repeated failures"
            deps[n] = {"reachable": reachable, "detail": detail, "circuit": circuit}
        available = any(d["reachable"] for d in deps.values())
        if detailed:
            tiers[tier_name] = {"available": available, "deployments": deps}
        else:
            tiers[tier_name] = {
                "available": available,
                "deployments": len(deps),
                "reachable": sum(d["reachable"] for d in deps.values()),
                "circuits_open": sum(d["circuit"] == "open" for d in deps.values()),
            }
    ok = all(t["available"] for t in tiers.values())
    return ok, {"status": "ok" if ok else "degraded", "tiers": tiers}


class UpstreamStatus:
    """The answer to `/status`, from cached probes and the breakers; built once per app."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: GatewayConfig,
        targets: Mapping[str, Target],
        breakers: Breakers,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._config = config
        self._targets = dict(targets)
        self._breakers = breakers
        self._clock = clock
        self._probes: Probes | None = None
        self._probed_at = 0.0
        self._round: asyncio.Task[Probes] | None = None
        self.rounds = 0
        """Rounds of probes sent so far (one request per probed deployment each)."""

    async def check(self, *, detailed: bool) -> tuple[bool, dict[str, Any]]:
        """(every tier can reach a deployment, the report); see `report`."""
        probes = await self._current()
        return report(self._config, probes, self._breakers.states(), detailed=detailed)

    async def _current(self) -> Probes:
        fresh = self._probes is not None and self._clock() - self._probed_at < CACHE_S
        if fresh and self._probes is not None:
            return self._probes
        if self._round is None or self._round.done():
            self._round = asyncio.get_running_loop().create_task(self._probe_all())
        # Shielded: a caller that goes away must not cancel the round the others wait for.
        return await asyncio.shield(self._round)

    async def _probe_all(self) -> Probes:
        names = list(self._targets)
        results = await asyncio.gather(*(probe(self._client, self._targets[n]) for n in names))
        self.rounds += 1
        self._probes = dict(zip(names, results, strict=True))
        self._probed_at = self._clock()
        return self._probes
