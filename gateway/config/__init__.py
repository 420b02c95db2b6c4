"""The gateway's configuration file: its format (`schema`) and how it is read (`load`).

Deployments, tiers, named policies (the engine's `PolicySpec`), API keys, limits, Redis, vLLM
`serve:` blocks and breaker settings. `load_config(path)` is what the app, `tiergate up` and the
tests call; every error is a `ConfigError` naming the file, the key path and the value.
"""

from gateway.config.deployment import (
    BreakerSettings,
    Capabilities,
    Deployment,
    LocalServe,
    Price,
)
from gateway.config.load import ConfigError, load_config, parse_config, substitute_env
from gateway.config.schema import GatewayConfig, KeySpec, Limits, Tier

__all__ = [
    "BreakerSettings",
    "Capabilities",
    "ConfigError",
    "Deployment",
    "GatewayConfig",
    "KeySpec",
    "Limits",
    "LocalServe",
    "Price",
    "Tier",
    "load_config",
    "parse_config",
    "substitute_env",
]
