"""The nouns of a routing decision: tiers, a policy's settings, a request's facts, the decision.

Plain values only. `PolicySpec` is the one piece of the gateway's YAML that belongs here: the
gateway's config schema (`gateway.config.schema`) embeds it under `policies:`, and the engine reads
it. Everything the gateway knows about deployments (URLs, keys, prices) stays in the gateway; the
engine sees tiers only through `TierFacts`, which the gateway computes from its config.

Tiers are named by the config and ordered as it lists them, cheapest first and the most capable
last: `TierFacts.order`. `small` and `large` are only the names of the classic two-tier config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TierName = str
"""A tier's name as the config spells it; checked against the config, not against a fixed list."""
TIERS: tuple[TierName, ...] = ("small", "large")
"""The tiers of the classic two-tier config, cheapest first (the default where none are given)."""
CHEAPEST, MOST_CAPABLE = "cheapest", "most_capable"
TIER_ALIASES = (CHEAPEST, MOST_CAPABLE)
"""Names that stand for the first and the last tier wherever a tier is named (fallback orders,
routes): a preset or a shared policy works whatever the config calls its tiers."""

DEFAULT_RULES: tuple[str, ...] = ("pii", "header", "vision", "tools", "context", "routes")
"""The rules a policy runs when it lists none, in order. `pii` comes first so that no header can
force personal data off the local tiers. This constant is the one place the default list is
written."""
Modality = Literal["image", "audio"]
"""Input other than text that only some deployments take."""

PiiAction = Literal["off", "keep_local", "redact"]
"""What a policy does with a request that carries personal data (`policies.pii`): nothing, keep it
on tiers whose deployments are local (refusing it when none can serve it), or replace each match
with a placeholder before a non-local deployment sees it."""


class PolicySpec(BaseModel):
    """A named policy. Exactly one of `threshold` and `target_strong_fraction` decides the tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    threshold: float | None = Field(None, ge=0, le=1)
    target_strong_fraction: float | None = Field(None, ge=0, le=1)
    rules: tuple[str, ...] = DEFAULT_RULES
    fallback: tuple[TierName, ...] = ()
    """Tiers to try first after the chosen one fails, then the others in the config's order
    (cheapest first). `cheapest` and `most_capable` name the first and last tier."""
    pii: PiiAction = "off"
    on_over_budget: Literal["reject", "downgrade"] = "reject"
    """A key whose budget cannot pay for this request: 429, or the cheapest tier if it fits."""
    on_over_rate: Literal["reject", "downgrade"] = "reject"
    """A key over its rpm or tpm: 429, or the cheapest tier, counted against the key's overflow
    counters (the same limits again); past those too, 429 (see `gateway.access.quota`)."""

    @model_validator(mode="after")
    def _one_way_to_decide(self) -> PolicySpec:
        if (self.threshold is None) == (self.target_strong_fraction is None):
            raise ValueError("give exactly one of threshold and target_strong_fraction")
        if self.pii != "off" and "pii" not in self.rules:
            raise ValueError(
                f"pii: {self.pii} needs the pii rule; add 'pii' (first) to rules {list(self.rules)}"
            )
        return self


@dataclass(frozen=True)
class RouteRequest:
    """What the policy may know about a request: facts the gateway extracted, no text."""

    prompt_tokens: int
    needs_tools: bool = False
    forced_tier: TierName | None = None
    category: str | None = None
    """The operator route the classifier named with enough confidence, else None."""
    category_probability: float | None = None
    """The classifier's probability for its best route (None: no routes configured)."""
    pii: tuple[str, ...] = ()
    """Kinds of personal data found in the request's messages (`policies.pii`), sorted."""
    pii_action: PiiAction = "off"
    """The deciding policy's `pii` setting: `Policy.decide` fills it in, the gateway leaves it."""
    modalities: frozenset[Modality] = frozenset()
    """Input other than text the request carries: `image`, `audio`."""


@dataclass(frozen=True)
class RouteTarget:
    """Where an operator route sends its traffic: a tier, and possibly one of its deployments."""

    tier: TierName
    deployment: str | None = None


@dataclass(frozen=True)
class TierFacts:
    """What the rules may know about the tiers, computed once by the gateway from its config."""

    tools: Mapping[TierName, bool]
    max_context_tokens: Mapping[TierName, int]
    order: tuple[TierName, ...] = TIERS
    """Every tier, cheapest first, the most capable last."""
    local: Mapping[TierName, bool] = field(default_factory=dict)
    """Whether a tier has a deployment marked `local: true` (personal data may go there)."""
    routes: Mapping[str, RouteTarget] = field(default_factory=dict)
    """Each operator route's target."""
    vision: Mapping[TierName, bool] = field(default_factory=dict)
    """Whether any deployment of the tier takes images (a tier not named: none does)."""
    audio: Mapping[TierName, bool] = field(default_factory=dict)
    """Whether any deployment of the tier takes `input_audio` parts."""

    def resolve(self, name: str) -> TierName:
        """A tier's name, with `cheapest` and `most_capable` standing for the first and last."""
        if name == CHEAPEST:
            return self.order[0]
        if name == MOST_CAPABLE:
            return self.order[-1]
        return name


@dataclass(frozen=True)
class Decision:
    policy: str
    tier: TierName
    reason: str
    """The deciding step: `score`, `header`, `tools`, `context`, `pii`, `route:<name>`, ..."""
    p_strong: float
    threshold: float
    fallbacks: tuple[TierName, ...]
    """Tiers to try, in order, after every deployment of `tier` has failed."""
    deployment: str | None = None
    """A deployment of `tier` to try first (an operator route that names one)."""
    keep_local: bool = False
    """Only deployments marked local may be tried: the request carries personal data."""
    redact: bool = False
    """Personal data must be replaced by placeholders before a non-local deployment sees it."""
    steps: tuple[str, ...] = ()
    """What each rule that acted said, in order (for `tiergate router explain`)."""


class NoEligibleTier(ValueError):
    """No tier may serve the request under its policy (personal data and no local tier that can
    take it): the client's request is refused, never sent elsewhere. `reason` names the rule."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
