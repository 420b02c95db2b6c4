"""Process settings: the one place the gateway reads its environment.

Environment variables (prefix `TIERGATE_`) first, then the defaults here. `Settings` are the
gateway process's (`tiergate serve`: built by the command, passed to `create_app`, never imported
as a global, so tests build their own); `CommandSettings` are what the other commands read (`up`,
`models prepare`, `logs`, and the `--host`/`--port` defaults of `serve` and `up`). Both share the
listen address, the log directory and the drain's grace, defined once in `_Shared`. The routing
config (a YAML file, see `gateway.config`) is separate: settings say where it is. `environ()` hands
out the variables the config names itself (`${NAME}`, `api_key_env`, `key_env`),
`prometheus_multiproc_dir()` prometheus-client's own.

The router reads its own settings (`router.settings`): it knows nothing of the gateway.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.telemetry.requestlog import DEFAULT_QUEUE_SIZE, LINGER_S

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ENCODER_THREADS_ENV = "TIERGATE_ENCODER_THREADS"


def default_log_dir() -> Path:
    """Where the request log and `tiergate up`'s child logs go unless TIERGATE_LOG_DIR says."""
    return Path.home() / ".cache" / "tiergate" / "logs"


def default_models_dir() -> Path:
    """Where `tiergate models prepare` writes checkpoints unless TIERGATE_MODELS_DIR says (the
    local config's `model_path` points there too)."""
    return Path.home() / ".cache" / "tiergate" / "models"


class _Shared(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIERGATE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, gt=0, lt=65536)
    log_dir: Path = Field(default_factory=default_log_dir)
    drain_grace_s: float = Field(
        30.0,
        ge=0,
        description="after SIGTERM, how long requests in flight may take to finish before they "
        "are ended cleanly (Kubernetes' terminationGracePeriodSeconds must be larger; `tiergate "
        "up` waits this long for its gateway)",
    )
    request_log_url: str | None = Field(
        None,
        description="the database the gateway keeps its request log, stored responses and "
        "outcomes in: sqlite:///path or postgresql://user:password@host:5432/db (default: the "
        "config's request_log_url, else sqlite in log_dir)",
    )

    @field_validator("request_log_url", mode="before")
    @classmethod
    def _empty_url_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("log_dir", mode="before")
    @classmethod
    def _empty_log_dir_is_unset(cls, value: Any) -> Any:
        """`TIERGATE_LOG_DIR=` means the default, as `${VAR:-}` does in the config."""
        return default_log_dir() if value == "" else value

    @field_validator("log_dir")
    @classmethod
    def _expand_log_dir(cls, value: Path) -> Path:
        """`~/logs` means the home directory's, for the gateway and the commands alike."""
        return value.expanduser()


class Settings(_Shared):
    """The gateway process's settings."""

    config_path: Path = Field(description="YAML routing config (deployments, tiers, policies)")

    # Request limits: over them the client gets an OpenAI error envelope, never a 500.
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)

    # Connections (gateway.connections): what a production proxy in front would enforce.
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="a request's line and headers must arrive within this (from the connection "
        "or from the request's first byte); else 408 and close (HAProxy's http-request 10 s)",
    )
    body_timeout_s: float = Field(
        60.0,
        gt=0,
        description="a request's whole body must arrive within this of its headers, however it "
        "trickles; else 408 and close (nginx's client_body_timeout is 60 s between reads)",
    )
    keepalive_timeout_s: float = Field(
        75.0,
        gt=0,
        description="an idle kept-alive connection is closed after this (nginx's default; longer "
        "than a cloud load balancer's 60 s idle timeout, so the balancer closes first)",
    )
    max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        description="request line and headers together; larger is 431 (nginx: 4 x 8 KiB)",
    )
    max_connections: int = Field(
        4096,
        gt=0,
        description="open client connections; past it a new one is answered 503 and closed, with "
        "a warning in the log (lowered to half the process's open-file limit if that is less)",
    )
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
    workers: str | None = Field(
        None,
        description="gateway processes on the port (`tiergate serve --workers`): a number or "
        "`auto`; default 1, or auto when limits are shared through Redis",
    )

    # Escalation mode, shadow judging, feedback (issue 15).
    escalation_keepalive_s: float = Field(
        5.0,
        gt=0,
        description="while a streamed answer is held back for its checks: seconds between SSE "
        "keep-alive comments (and before the response's headers are sent without the route)",
    )
    outcome_retention_days: float | None = Field(
        30.0,
        gt=0,
        description="days outcome rows (embeddings, answer features, verdicts) are kept; "
        "unset: until deleted",
    )
    outcome_content: bool = Field(
        False,
        description="also keep the prompt and answer text of shadowed and feedback requests in "
        "their outcome rows (off: only embeddings and answer features)",
    )
    reload_poll_s: float = Field(
        2.0,
        gt=0,
        description="seconds between looks at the reload generation, through which a reload "
        "asked of one worker (POST /admin/router/reload, SIGHUP) reaches every other",
    )
    recent_answers: int = Field(
        1024,
        ge=0,
        description="answered requests each process remembers (one hour at most, in memory) so "
        "that feedback on them is stored with their embedding and answer features",
    )


class CommandSettings(_Shared):
    """What `tiergate up`, `tiergate models prepare` and `tiergate logs` read."""

    models_dir: Path = Field(default_factory=default_models_dir)

    @field_validator("models_dir", mode="before")
    @classmethod
    def _empty_models_dir_is_unset(cls, value: Any) -> Any:
        return default_models_dir() if value == "" else value
    vllm_command: str | None = Field(None, description="argv prefix replacing vLLM's server")
    vllm_python: str | None = Field(None, description="the vLLM environment's interpreter")
    gateway_command: str | None = Field(None, description="argv prefix replacing the gateway's")
    vllm_start_timeout: float = Field(900.0, description="seconds for every vLLM to serve")

    # vLLM's and torch's own variables, passed to vLLM children with our defaults.
    vllm_use_aot_compile: str = Field(
        "0", validation_alias=AliasChoices("VLLM_USE_AOT_COMPILE", "vllm_use_aot_compile")
    )
    torchinductor_cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "vllm" / "torchinductor",
        validation_alias=AliasChoices("TORCHINDUCTOR_CACHE_DIR", "torchinductor_cache_dir"),
    )


def environ() -> Mapping[str, str]:
    """The process environment, for the variables the config names itself: `${NAME}` in the
    YAML, a deployment's `api_key_env`, a key's `key_env`; and what child processes inherit."""
    return os.environ


def export_to_workers(*, multiproc_dir: Path | None, encoder_threads: int) -> None:
    """What `tiergate serve --workers N` tells its workers through the environment they inherit:
    prometheus-client's multiprocess directory, and each encoder's thread count unless
    TIERGATE_ENCODER_THREADS is set already (the router reads it: `router.settings`)."""
    if multiproc_dir is not None:
        os.environ[MULTIPROC_ENV] = str(multiproc_dir)
    if not os.environ.get(ENCODER_THREADS_ENV):
        os.environ[ENCODER_THREADS_ENV] = str(encoder_threads)


def prometheus_multiproc_dir() -> Path | None:
    """prometheus-client's multiprocess directory (`PROMETHEUS_MULTIPROC_DIR`), if set. It must be
    set before the process starts: prometheus-client reads it when it creates its values."""
    path = os.environ.get(MULTIPROC_ENV)
    return Path(path) if path else None
