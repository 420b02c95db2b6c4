"""The gateway's YAML configuration: deployments, tiers and named routing policies.

This module owns the file format and nothing else. It substitutes `${ENV}` and `${ENV:-default}` in
string values, validates the result with pydantic and, when something is wrong, raises `ConfigError`
naming the file, the key path and what is accepted, so a bad config fails at start and never at the
first request. Built-in presets (`balanced`, `cost-saver`, `quality-first`) are merged in unless the
file defines a policy of the same name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

TierName = Literal["small", "large"]
TIERS: tuple[TierName, ...] = ("small", "large")

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says where and what is accepted."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Strict):
    """USD per million tokens. A local deployment may give a GPU-hour price and a throughput."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)
    gpu_hour_usd: float | None = Field(None, ge=0)
    tokens_per_second: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _gpu_pricing_is_complete(self) -> Price:
        if (self.gpu_hour_usd is None) != (self.tokens_per_second is None):
            raise ValueError("gpu_hour_usd and tokens_per_second go together")
        return self

    def per_token(self) -> tuple[float, float]:
        """(input, output) USD per token; GPU-hour pricing charges every token alike."""
        if self.gpu_hour_usd is not None and self.tokens_per_second is not None:
            per = self.gpu_hour_usd / 3600.0 / self.tokens_per_second
            return per, per
        return self.input_per_mtok / 1e6, self.output_per_mtok / 1e6

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        per_in, per_out = self.per_token()
        return prompt_tokens * per_in + completion_tokens * per_out


class Capabilities(_Strict):
    tools: bool = True
    max_context_tokens: int = Field(8192, gt=0)


class LocalServe(_Strict):
    """How `tiergate up` starts a vLLM server for this deployment (absent: someone else runs it)."""

    model_path: str
    port: int = Field(gt=0, lt=65536)
    host: str = "127.0.0.1"
    served_model_name: str | None = None
    max_model_len: int = Field(2048, gt=0)
    kv_cache_gib: float = Field(1.0, gt=0)
    extra_args: tuple[str, ...] = ()


class Breaker(_Strict):
    """When a deployment stops being tried: `failures` within `window_s` open its circuit for
    `cooldown_s`, then one probe request decides whether it closes again."""

    failures: int = Field(5, ge=1)
    window_s: float = Field(30.0, gt=0)
    cooldown_s: float = Field(15.0, gt=0)


class Deployment(_Strict):
    """One model behind one endpoint. `model` is a litellm model string (`openai/gpt-4o-mini`)."""

    model: str = Field(min_length=1)
    api_base: str | None = None
    api_key_env: str | None = None
    backend: Literal["litellm", "openai-compatible"] = "litellm"
    price: Price = Price()
    capabilities: Capabilities = Capabilities()
    timeout_s: float = Field(120.0, gt=0)
    """Total time for one attempt: a whole JSON answer, or a whole stream."""
    connect_timeout_s: float = Field(5.0, gt=0)
    first_byte_timeout_s: float | None = Field(None, gt=0)
    """Time to a stream's first chunk; None: `timeout_s`. (A JSON answer arrives whole, so
    `timeout_s` bounds it.)"""
    retries: int = Field(0, ge=0, le=5)
    """Extra attempts on this deployment, with backoff, before falling back to the next one."""
    max_concurrency: int | None = Field(None, ge=1)
    max_queue: int = Field(0, ge=0)
    queue_timeout_s: float = Field(5.0, gt=0)
    breaker: Breaker = Breaker()
    serve: LocalServe | None = None

    @field_validator("api_base", "api_key_env", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """`${VAR:-}` substitutes to "", which means: not set."""
        return None if value == "" else value


class Tier(_Strict):
    deployments: tuple[str, ...] = Field(min_length=1)
    strategy: Literal["round-robin", "least-in-flight"] = "round-robin"


class PolicySpec(_Strict):
    """A named policy. Exactly one of `threshold` and `target_strong_fraction` decides the tier."""

    description: str = ""
    threshold: float | None = Field(None, ge=0, le=1)
    target_strong_fraction: float | None = Field(None, ge=0, le=1)
    rules: tuple[str, ...] = ("header", "tools", "context")
    fallback: tuple[TierName, ...] = ("small", "large")
    on_over_budget: Literal["reject", "downgrade"] = "reject"
    """A key whose budget cannot pay for this request: 429, or the small tier if it still fits."""
    on_over_rate: Literal["reject", "downgrade"] = "reject"
    """A key over its rpm or tpm: 429, or the small tier, counted against the key's small-tier
    overflow counters (the same limits again); past those too, 429 (see `gateway.quota`)."""

    @model_validator(mode="after")
    def _one_way_to_decide(self) -> PolicySpec:
        if (self.threshold is None) == (self.target_strong_fraction is None):
            raise ValueError("give exactly one of threshold and target_strong_fraction")
        return self


class KeySpec(_Strict):
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


class Limits(_Strict):
    """Request limits and how shared counters behave."""

    max_messages: int = Field(1024, ge=1)
    max_tokens: int = Field(65536, ge=1)
    """Largest `max_tokens` / `max_completion_tokens` a client may ask for."""
    reserve_completion_tokens: int = Field(1024, ge=1)
    """Completion tokens held against a key's tpm and budget when the request sets no max."""
    on_redis_error: Literal["open", "closed"] = "open"
    """Redis unreachable: let requests through uncounted (open) or refuse them with 503."""
    metrics_require_key: bool = False


class GatewayConfig(_Strict):
    deployments: dict[str, Deployment] = Field(min_length=1)
    tiers: dict[TierName, Tier]
    policies: dict[str, PolicySpec] = Field(default_factory=dict)
    default_policy: str = "balanced"
    keys: tuple[KeySpec, ...] = ()
    redis_url: str | None = None
    """Shared rate and budget counters (`redis://host:6379/0`); None: in this process only."""
    limits: Limits = Limits()

    @field_validator("redis_url", mode="before")
    @classmethod
    def _no_redis(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _names_resolve(self) -> GatewayConfig:
        missing = [t for t in TIERS if t not in self.tiers]
        if missing:
            raise ValueError(f"tiers must declare both small and large; missing: {missing}")
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
        return self

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


def substitute_env(value: Any, env: Mapping[str, str] | None = None) -> Any:
    """Replace `${NAME}` and `${NAME:-default}` in every string of a loaded YAML tree."""
    environ = os.environ if env is None else env
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ and environ[name] != "":
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set and has no default")

        return _ENV_PATTERN.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute_env(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, environ) for v in value]
    return value


def preset_policies() -> dict[str, Any]:
    text = resources.files("policies").joinpath("presets/policies.yaml").read_text("utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def parse_config(raw: Any, source: str = "<config>") -> GatewayConfig:
    """Validate an already-loaded YAML tree; errors name `source` and the key path."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    try:
        raw = substitute_env(raw)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    policies = {**preset_policies(), **(raw.get("policies") or {})}
    try:
        return GatewayConfig.model_validate({**raw, "policies": policies})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {path}: {err['msg']} (got {_short(err.get('input'))})")
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(lines)) from None


def load_config(path: str | Path) -> GatewayConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(raw, str(path))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
