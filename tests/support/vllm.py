"""What the end-to-end tests share: the local SmolLM2 deployment's name and the servers they start
(vLLM itself, and the gateway in front of it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.config import GatewayConfig

SMALL = "smollm2-local"
"""The deployment deploy/local/tiergate.yaml serves on vLLM."""


@dataclass(frozen=True)
class Server:
    base_url: str  # ends in /v1
    model: str  # what to put in a request's "model"
    log_path: Path


@dataclass(frozen=True)
class Gateway(Server):
    config: GatewayConfig
