"""Spreading a tier's traffic over its deployments, and knowing which ones can take it.

The balancer is the gateway's only view of deployment state: which are available (their key is
set) and how many requests each has in flight. It orders a tier's deployments for one request,
round-robin or least-in-flight as the config says; the service tries them in that order.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from gateway.config import GatewayConfig
from gateway.upstream.base import Target
from policies import TierName


class Balancer:
    def __init__(self, config: GatewayConfig, targets: Mapping[str, Target]) -> None:
        self._config = config
        self.targets = dict(targets)
        self._turn = {tier: itertools.count() for tier in config.tiers}
        self.in_flight: Counter[str] = Counter()

    def order(self, tier: TierName) -> list[Target]:
        """The tier's deployments, best first, unavailable ones included (last) so the caller
        can report why they were skipped."""
        spec = self._config.tiers[tier]
        names = list(spec.deployments)
        if spec.strategy == "round-robin":
            start = next(self._turn[tier]) % len(names)
            names = names[start:] + names[:start]
        else:
            names.sort(key=lambda n: self.in_flight[n])
        targets = [self.targets[n] for n in names]
        return [t for t in targets if t.available] + [t for t in targets if not t.available]

    def tier_available(self, tier: TierName) -> bool:
        return any(self.targets[n].available for n in self._config.tiers[tier].deployments)

    @contextmanager
    def busy(self, name: str) -> Iterator[None]:
        self.in_flight[name] += 1
        try:
            yield
        finally:
            self.in_flight[name] -= 1
