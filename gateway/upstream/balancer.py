"""Spreading a tier's traffic over its deployments, and knowing which ones can take it.

The balancer orders a tier's deployments for one request, round-robin or least-in-flight as the
config says; the service tries them in that order, available ones (their key is set) first. It
keeps no count of its own: least-in-flight reads the in-flight counts that
`gateway.reliability.concurrency` owns.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from gateway.config import GatewayConfig
from gateway.reliability.concurrency import Concurrency
from gateway.upstream.base import Target
from policies import TierName


class Balancer:
    def __init__(
        self, config: GatewayConfig, targets: Mapping[str, Target], concurrency: Concurrency
    ) -> None:
        self._config = config
        self.targets = dict(targets)
        self._concurrency = concurrency
        self._turn = {tier: itertools.count() for tier in config.tiers}

    def order(self, tier: TierName) -> list[Target]:
        """The tier's deployments, best first, unavailable ones included (last) so the caller
        can report why they were skipped."""
        spec = self._config.tiers[tier]
        names = list(spec.deployments)
        if spec.strategy == "round-robin":
            start = next(self._turn[tier]) % len(names)
            names = names[start:] + names[:start]
        else:
            names.sort(key=self._concurrency.in_flight)
        targets = [self.targets[n] for n in names]
        return [t for t in targets if t.available] + [t for t in targets if not t.available]

    def tier_available(self, tier: TierName) -> bool:
        return any(self.targets[n].available for n in self._config.tiers[tier].deployments)
