"""Routing policies: from a router score and a request's facts to a tier, with fallbacks.

Pure decisions only: no HTTP, no embeddings, no files, no environment. `policies.types` holds the
nouns, `policies.rules` the rule registry and the built-in rules, `policies.engine` how a decision
is made, `policies.admission` the choices around a key's limits (downgrades, forced tiers),
`policies.modality` the `vision` rule (images and audio go to tiers that take them),
`policies.pii` how personal data is found and replaced in the text the gateway hands over. The
gateway's YAML format lives in `gateway.config`, which embeds `PolicySpec`.
"""

from policies.admission import (
    DOWNGRADE_TIER,
    Downgrade,
    InvalidTier,
    after_downgrade,
    downgrades,
    forced_tier,
    reservation_costs,
)
from policies.engine import Policy, build_policies
from policies.modality import accepts
from policies.rules import Narrow, Pick, Rule, Verdict, register_rule, registered_rules
from policies.types import (
    DEFAULT_RULES,
    TIER_ALIASES,
    TIERS,
    Decision,
    Modality,
    NoEligibleTier,
    PiiAction,
    PolicySpec,
    RouteRequest,
    RouteTarget,
    TierFacts,
    TierName,
)

__all__ = [
    "DEFAULT_RULES",
    "DOWNGRADE_TIER",
    "TIERS",
    "TIER_ALIASES",
    "Decision",
    "Downgrade",
    "InvalidTier",
    "Modality",
    "Narrow",
    "NoEligibleTier",
    "Pick",
    "PiiAction",
    "Policy",
    "PolicySpec",
    "RouteRequest",
    "RouteTarget",
    "Rule",
    "TierFacts",
    "TierName",
    "Verdict",
    "accepts",
    "after_downgrade",
    "build_policies",
    "downgrades",
    "forced_tier",
    "register_rule",
    "registered_rules",
    "reservation_costs",
]
