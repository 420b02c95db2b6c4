"""Process settings: the one place the gateway reads its environment.

Environment variables (prefix `TIERGATE_`) first, then the defaults here. The routing config (a
YAML file, see `gateway.config`) is separate: settings say where it is. Handed out through
`app.state.settings`, never imported as a global, so tests build their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.telemetry.requestlog import DEFAULT_QUEUE_SIZE, LINGER_S


def _default_log_dir() -> Path:
    return Path.home() / ".cache" / "tiergate" / "logs"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIERGATE_", extra="ignore")

    config_path: Path = Field(description="YAML routing config (deployments, tiers, policies)")
    host: str = "127.0.0.1"
    port: int = Field(8080, gt=0, lt=65536)

    # Request limits: over them the client gets an OpenAI error envelope, never a 500.
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    log_content: bool = Field(
        False,
        description="let litellm and the openai client log prompts, completions and request "
        "options at DEBUG (off: their loggers are held at WARNING)",
    )

    # Router: None means the shipped artifact and the packaged MiniLM encoder.
    router_artifact: Path | None = None
    router_max_batch: int = Field(32, gt=0)
    router_cache_size: int = Field(
        4096, ge=0, description="texts whose embeddings the router keeps (0: none)"
    )

    # Telemetry.
    log_dir: Path = Field(default_factory=_default_log_dir)
    request_log: bool = True
    request_log_queue_size: int = Field(
        DEFAULT_QUEUE_SIZE,
        gt=0,
        description="rows waiting for the log writer; past it rows are dropped and counted",
    )
    request_log_linger_s: float = Field(
        LINGER_S,
        ge=0,
        description="how long the log writer collects rows before writing them together",
    )
    metrics: bool = Field(True, description="serve Prometheus metrics at GET /metrics")


def environ() -> Mapping[str, str]:
    """The process environment, for the variables the config names itself: `${NAME}` in the
    YAML, a deployment's `api_key_env`, a key's `key_env`."""
    return os.environ
