"""Routing policies: from a router score and a request's facts to a tier, with fallbacks.

Knows nothing of HTTP or embeddings. See `policies.config` for the file format and
`policies.engine` for how a decision is made.
"""

from policies.config import (
    TIERS,
    ConfigError,
    Deployment,
    GatewayConfig,
    PolicySpec,
    Price,
    TierName,
    load_config,
    parse_config,
)
from policies.engine import (
    Decision,
    Policy,
    RouteRequest,
    TierFacts,
    build_policies,
    register_rule,
    registered_rules,
)

__all__ = [
    "TIERS",
    "ConfigError",
    "Decision",
    "Deployment",
    "GatewayConfig",
    "Policy",
    "PolicySpec",
    "Price",
    "RouteRequest",
    "TierFacts",
    "TierName",
    "build_policies",
    "load_config",
    "parse_config",
    "register_rule",
    "registered_rules",
]
