"""The nouns of a routing decision: tiers, a policy's settings, a request's facts, the decision.

Plain values only. `PolicySpec` is the one piece of the gateway's YAML that belongs here: the
gateway's config schema (`gateway.config.schema`) embeds it under `policies:`, and the engine reads
it. Everything the gateway knows about deployments (URLs, keys, prices) stays in the gateway; the
engine sees tiers only through `TierFacts`, which the gateway computes from its config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TierName = Literal["small", "large"]
TIERS: tuple[TierName, ...] = ("small", "large")
Modality = Literal["image", "audio"]
"""Input other than text that only some deployments take."""


DEFAULT_CHECKS: tuple[str, ...] = (
    "json_schema",
    "tool_arguments",
    "code_syntax",
    "degenerate",
    "truncated",
)
"""The answer checks an escalating policy runs when it lists none (the gateway owns the checks
themselves and refuses a name it does not know at start)."""


class EscalateSpec(BaseModel):
    """Escalation mode: the cheaper tier answers first, and its whole answer is checked before the
    client sees a byte; on a failed check, or a verifier score above `verifier_threshold`, the
    tier `to` answers instead."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: TierName = "large"
    checks: tuple[str, ...] = DEFAULT_CHECKS
    verifier: str | None = None
    """`default` (the shipped verifier), a verifier artifact's directory, or None (`none`):
    checks only."""
    verifier_threshold: float = Field(0.5, ge=0, le=1)

    @field_validator("verifier", mode="before")
    @classmethod
    def _none_is_none(cls, value: Any) -> Any:
        return None if value in ("none", "") else value


class ShadowSpec(BaseModel):
    """Shadow judging: for `fraction` of the requests a cheaper tier answered, after the client has
    its answer, the most capable tier answers too and the `judge` deployment compares the two
    (both orders); never past `daily_budget_usd` a UTC day, shared by every worker and replica."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fraction: float = Field(0.02, ge=0, le=1)
    judge: str = Field(min_length=1)
    daily_budget_usd: float = Field(5.0, gt=0)


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
    escalate: EscalateSpec | None = None
    """Escalation mode (`policies.escalation`); None: the routed tier's answer is final."""
    shadow: ShadowSpec | None = None
    """Shadow judging (`gateway.chat.shadow`); None: off."""

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
