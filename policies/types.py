"""The nouns of a routing decision: tiers, a policy's settings, a request's facts, the decision.

Plain values only. `PolicySpec` is the one piece of the gateway's YAML that belongs here: the
gateway's config schema (`gateway.config.schema`) embeds it under `policies:`, and the engine reads
it. Everything the gateway knows about deployments (URLs, keys, prices) stays in the gateway; the
engine sees tiers only through `TierFacts`, which the gateway computes from its config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TierName = Literal["small", "large"]
TIERS: tuple[TierName, ...] = ("small", "large")
Modality = Literal["image", "audio"]
"""Input other than text that only some deployments take."""


class PolicySpec(BaseModel):
    """A named policy. Exactly one of `threshold` and `target_strong_fraction` decides the tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    threshold: float | None = Field(None, ge=0, le=1)
    target_strong_fraction: float | None = Field(None, ge=0, le=1)
    rules: tuple[str, ...] = ("header", "tools", "context", "vision")
    fallback: tuple[TierName, ...] = ("small", "large")
    on_over_budget: Literal["reject", "downgrade"] = "reject"
    """A key whose budget cannot pay for this request: 429, or the small tier if it still fits."""
    on_over_rate: Literal["reject", "downgrade"] = "reject"
    """A key over its rpm or tpm: 429, or the small tier, counted against the key's small-tier
    overflow counters (the same limits again); past those too, 429 (see `gateway.access.quota`)."""

    @model_validator(mode="after")
    def _one_way_to_decide(self) -> PolicySpec:
        if (self.threshold is None) == (self.target_strong_fraction is None):
            raise ValueError("give exactly one of threshold and target_strong_fraction")
        return self


@dataclass(frozen=True)
class RouteRequest:
    """What the policy may know about a request: no text, only facts the gateway extracted."""

    prompt_tokens: int
    needs_tools: bool = False
    forced_tier: TierName | None = None
    modalities: frozenset[Modality] = frozenset()
    """Input other than text the request carries: `image`, `audio`."""


@dataclass(frozen=True)
class TierFacts:
    """What the rules may know about the tiers, computed once by the gateway from its config."""

    tools: dict[TierName, bool]
    max_context_tokens: dict[TierName, int]
    vision: dict[TierName, bool] = field(default_factory=dict)
    """Whether any deployment of the tier takes images (a tier not named: none does)."""
    audio: dict[TierName, bool] = field(default_factory=dict)
    """Whether any deployment of the tier takes `input_audio` parts."""


@dataclass(frozen=True)
class Decision:
    policy: str
    tier: TierName
    reason: str
    p_strong: float
    threshold: float
    fallbacks: tuple[TierName, ...]
    """Tiers to try, in order, after every deployment of `tier` has failed."""
