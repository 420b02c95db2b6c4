"""The gateway's YAML configuration, as pydantic models: deployments, tiers, policies, keys, limits.

This module owns the file's shape and its cross-field checks (every tier names declared deployments,
the default policy exists, key ids are unique ...). Reading the file, `${ENV}` substitution, presets
and `ConfigError` live in `gateway.config.load`; the `routes:` mapping's presets and texts in
`gateway.config.routes`. A policy's settings (`PolicySpec`) are the routing engine's own type
(`policies.types`), embedded here under `policies:`.

Tiers are named freely and ordered as listed, cheapest first and the most capable last (prices
alone cannot order tiers that mix per-token and GPU-hour pricing). A config whose tiers are `small`
and `large` keeps that order however it lists them.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from gateway.config.deployment import Deployment, Strict
from gateway.config.routes import expand_routes
from policies import TIER_ALIASES, TIERS, PolicySpec, RouteTarget, TierFacts, TierName
from policies.pii import check_patterns
from router.route_specs import RouteSpec

TIER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Tier(Strict):
    deployments: tuple[str, ...] = Field(min_length=1)
    strategy: Literal["round-robin", "least-in-flight"] = "round-robin"


class Route(Strict):
    """One operator route (`routes:`): the traffic it describes and where it goes."""

    tier: str | None = None
    """A tier's name, or `cheapest` / `most_capable`."""
    deployment: str | None = None
    """A deployment (of some tier) to try first."""
    description: str = ""
    examples: tuple[str, ...] = Field(min_length=5)

    @model_validator(mode="after")
    def _one_target(self) -> Route:
        if (self.tier is None) == (self.deployment is None):
            raise ValueError("give exactly one of tier and deployment")
        return self


class KeySpec(Strict):
    """One API key: its secret as a SHA-256 hex digest or the name of an environment variable that
    holds it (never the key itself in the file), what it may use and how much."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    key_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    key_env: str | None = None
    admin: bool = False
    policies: tuple[str, ...] | None = None
    """Policies this key may route with (`auto`, `auto:<name>`); None: all."""
    deployments: tuple[str, ...] | None = None
    """Deployments this key may reach, by name or by routing; None: all."""
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    budget_usd: float | None = Field(None, gt=0)
    budget_period: Literal["day", "month"] = "day"

    @model_validator(mode="after")
    def _one_secret(self) -> KeySpec:
        if (self.key_sha256 is None) == (self.key_env is None):
            raise ValueError(f"key {self.id!r}: give exactly one of key_sha256 and key_env")
        return self


class Limits(Strict):
    """Request limits and how shared counters behave."""

    max_messages: int = Field(1024, ge=1)
    max_tokens: int = Field(65536, ge=1)
    """Largest `max_tokens` / `max_completion_tokens` a client may ask for."""
    reserve_completion_tokens: int = Field(1024, ge=1)
    """Completion tokens held against a key's tpm and budget when the request sets no max."""
    on_redis_error: Literal["open", "closed"] = "open"
    """Redis unreachable: let requests through uncounted (open) or refuse them with 503."""
    redis_timeout_s: float = Field(0.25, gt=0)
    """How long one counter operation (connecting included) may wait for Redis before it counts
    as unreachable: short, since every request waits for it."""
    metrics_require_key: bool = False


class ResponsesSettings(Strict):
    """The Responses API's stored responses (`gateway.storage.responses`)."""

    store: bool = True
    """Keep responses (for `previous_response_id` and `GET /v1/responses/{id}`) unless a request
    says `store: false`; false: keep none, gateway-wide, and refuse `previous_response_id`."""
    retention_days: float | None = Field(30, gt=0)
    """How long a stored response is kept; None: until it is deleted."""


class GatewayConfig(Strict):
    deployments: dict[str, Deployment] = Field(min_length=1)
    tiers: dict[TierName, Tier]
    """Cheapest first, the most capable last."""
    routes: dict[str, Route] = Field(default_factory=dict)
    """Operator routes (`gateway.config.routes`); `{preset: general}` switches the shipped ones
    on."""
    route_confidence: float = Field(0.6, gt=0, le=1)
    """The probability a route needs to decide; below it the router's score decides."""
    pii_patterns: dict[str, str] = Field(default_factory=dict)
    """Extra kinds of personal data, by name: a regular expression each (`policies.pii`)."""
    policies: dict[str, PolicySpec] = Field(default_factory=dict)
    default_policy: str = "balanced"
    keys: tuple[KeySpec, ...] = ()
    redis_url: str | None = None
    """Shared rate and budget counters (`redis://host:6379/0`); None: in this process only."""
    request_log_url: str | None = None
    """The database for the request log, stored responses and outcomes (`postgresql://...` to
    share it between replicas); TIERGATE_REQUEST_LOG_URL wins; None: SQLite in the log dir."""
    limits: Limits = Limits()
    responses: ResponsesSettings = ResponsesSettings()

    @field_validator("redis_url", "request_log_url", mode="before")
    @classmethod
    def _empty_url_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("request_log_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is not None:
            from gateway.storage.url import DatabaseURL

            DatabaseURL.parse(value)  # a ValueError naming the value and what is accepted
        return value

    @field_validator("routes", mode="before")
    @classmethod
    def _expand_routes(cls, value: Any) -> Any:
        return expand_routes(value)

    @field_validator("pii_patterns")
    @classmethod
    def _patterns_compile(cls, value: dict[str, str]) -> dict[str, str]:
        check_patterns(value)
        return value

    @model_validator(mode="after")
    def _names_resolve(self) -> GatewayConfig:
        self._tiers_resolve()
        for tier_name, tier in self.tiers.items():
            for name in tier.deployments:
                if name not in self.deployments:
                    known = ", ".join(sorted(self.deployments))
                    raise ValueError(
                        f"tiers.{tier_name} names deployment {name!r}; declared: {known}"
                    )
        if self.default_policy not in self.policies:
            known = ", ".join(sorted(self.policies))
            raise ValueError(f"default_policy {self.default_policy!r} is not one of: {known}")
        for name in self.deployments:
            if name == "auto" or name.startswith("auto:"):
                raise ValueError(f"deployment name {name!r} is reserved for routing")
        self._keys_resolve()
        self._targets_resolve()
        self._learning_resolves()
        return self

    def _tiers_resolve(self) -> None:
        names = list(self.tiers)
        if len(names) < 2:
            missing = [t for t in TIERS if t not in names] if set(names) <= set(TIERS) else []
            raise ValueError(
                f"tiers: declare at least two, cheapest first and the most capable last; got "
                f"{names}"
                + (
                    f" (a two-tier config names small and large; missing: {missing})"
                    if missing
                    else ""
                )
            )
        for name in names:
            if not TIER_NAME.match(name) or name in TIER_ALIASES:
                raise ValueError(
                    f"tier name {name!r}: use 1-64 letters, digits, '_', '.' or '-', and not "
                    f"{' or '.join(TIER_ALIASES)} (they stand for the first and last tier)"
                )

    def _targets_resolve(self) -> None:
        """Fallback orders and routes name tiers and deployments that exist."""
        known = [*self.tiers, *TIER_ALIASES]
        for name, policy in self.policies.items():
            for tier in policy.fallback:
                if tier not in known:
                    raise ValueError(
                        f"policies.{name}.fallback names tier {tier!r}; tiers: {', '.join(known)}"
                    )
        for name, route in self.routes.items():
            if route.tier is not None and route.tier not in known:
                raise ValueError(f"routes.{name}.tier {route.tier!r}; tiers: {', '.join(known)}")
            if route.deployment is not None and self.tier_of(route.deployment) is None:
                raise ValueError(
                    f"routes.{name}.deployment {route.deployment!r} is not in any tier; name a "
                    f"deployment listed under tiers ({', '.join(self._tiered())})"
                )

    def _tiered(self) -> list[str]:
        return [d for tier in self.tiers.values() for d in tier.deployments]

    def tier_order(self) -> tuple[TierName, ...]:
        """The tiers, cheapest first (`small` before `large`, however a two-tier config lists
        them)."""
        if set(self.tiers) == set(TIERS):
            return TIERS
        return tuple(self.tiers)

    def route_specs(self) -> list[RouteSpec]:
        """What the route classifier learns from, in the order written (`router.load_routes`)."""
        return [RouteSpec(n, r.description, r.examples) for n, r in self.routes.items()]

    def route_targets(self) -> dict[str, RouteTarget]:
        targets = {}
        for name, route in self.routes.items():
            if route.deployment is not None:
                tier = self.tier_of(route.deployment)
                assert tier is not None  # checked by _targets_resolve
                targets[name] = RouteTarget(tier, route.deployment)
            else:
                assert route.tier is not None
                targets[name] = RouteTarget(route.tier)
        return targets

    def _learning_resolves(self) -> None:
        """Escalation tiers and shadow judges name what the config declares."""
        tiers, known = [*self.tiers, *TIER_ALIASES], ", ".join(sorted(self.deployments))
        for name, policy in self.policies.items():
            if policy.escalate is not None and policy.escalate.to not in tiers:
                to = policy.escalate.to
                raise ValueError(f"policies.{name}.escalate.to names tier {to!r}; tiers: {tiers}")
            if policy.shadow is not None and policy.shadow.judge not in self.deployments:
                judge = policy.shadow.judge
                raise ValueError(f"policies.{name}.shadow.judge {judge!r}; deployments: {known}")

    def _keys_resolve(self) -> None:
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError(f"key ids must be unique; got {ids}")
        for key in self.keys:
            for policy in key.policies or ():
                if policy not in self.policies:
                    raise ValueError(f"key {key.id!r} names unknown policy {policy!r}")
            for dep in key.deployments or ():
                if dep not in self.deployments:
                    raise ValueError(f"key {key.id!r} names unknown deployment {dep!r}")

    def tier_of(self, deployment: str) -> TierName | None:
        for tier_name, tier in self.tiers.items():
            if deployment in tier.deployments:
                return tier_name
        return None

    def tier_facts(self) -> TierFacts:
        """What the routing rules may know about each tier: its place in the order, whether any
        of its deployments calls tools, takes images or audio, or is local, the longest context
        one of them takes, and each operator route's target."""
        tools: dict[TierName, bool] = {}
        context: dict[TierName, int] = {}
        local: dict[TierName, bool] = {}
        vision: dict[TierName, bool] = {}
        audio: dict[TierName, bool] = {}
        for name, tier in self.tiers.items():
            deps = [self.deployments[d] for d in tier.deployments]
            tools[name] = any(d.capabilities.tools for d in deps)
            context[name] = max(d.capabilities.max_context_tokens for d in deps)
            local[name] = any(d.local for d in deps)
            vision[name] = any(d.capabilities.vision for d in deps)
            audio[name] = any(d.capabilities.audio for d in deps)
        return TierFacts(
            tools,
            context,
            self.tier_order(),
            local,
            self.route_targets(),
            vision=vision,
            audio=audio,
        )
