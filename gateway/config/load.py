"""Reading the gateway's YAML configuration: the file, `${ENV}` substitution, presets, errors.

`load_config` reads a file; `parse_config` validates an already-loaded tree. Strings may say
`${NAME}` or `${NAME:-default}`, replaced from the process environment (`gateway.settings.environ`)
before validation. The built-in presets (`balanced`, `cost-saver`, `quality-first`, in
`presets/policies.yaml`) are merged in unless the file defines a policy of the same name. Anything
wrong raises `ConfigError` naming the file, the key path and the value received, so a bad config
fails at start and never at the first request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.config.schema import GatewayConfig

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says where and what is accepted."""


def substitute_env(value: Any, env: Mapping[str, str] | None = None) -> Any:
    """Replace `${NAME}` and `${NAME:-default}` in every string of a loaded YAML tree."""
    if env is None:
        from gateway.settings import environ

        env = environ()
    found: Mapping[str, str] = env
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in found and found[name] != "":
                return found[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set and has no default")

        return _ENV_PATTERN.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute_env(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, found) for v in value]
    return value


def preset_policies() -> dict[str, Any]:
    text = resources.files("gateway.config").joinpath("presets/policies.yaml").read_text("utf-8")
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
