"""The FastAPI application: built once from settings, with every service on `app.state`.

`create_app` does the slow, fallible work (read the config, load the router, resolve thresholds)
before the server listens, so a bad config or a missing model fails at start with a clear message.
Tests pass their own scorer, backends or environment instead of monkeypatching globals.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from gateway.backends import Backend, LiteLLMBackend, Target
from gateway.balancer import Balancer
from gateway.catalogue import catalogue
from gateway.errors import install_error_handlers
from gateway.limits import BodySizeLimit
from gateway.routes import router as api_routes
from gateway.scoring import BatchingScorer, Scorer
from gateway.service import ChatService
from gateway.settings import Settings
from gateway.telemetry import build_telemetry
from policies import build_policies, load_config

log = logging.getLogger(__name__)


def load_scorer(settings: Settings) -> Scorer:
    """The trained router from its artifact (the shipped one by default)."""
    from router import load_router

    return load_router(settings.router_artifact)


def create_app(
    settings: Settings,
    *,
    scorer: Scorer | None = None,
    backends: Mapping[str, Backend] | None = None,
    env: Mapping[str, str] | None = None,
) -> FastAPI:
    config = load_config(settings.config_path)
    environ = os.environ if env is None else env
    targets = {n: Target.from_config(n, d, environ) for n, d in config.deployments.items()}
    scorer = scorer if scorer is not None else load_scorer(settings)
    calibrate = getattr(scorer, "threshold_for_fraction", None)
    policies = build_policies(config, calibrate)
    balancer = Balancer(config, targets)
    telemetry = build_telemetry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = backends is None
        live: Mapping[str, Backend] = backends or {"litellm": LiteLLMBackend()}
        batcher = BatchingScorer(scorer, settings.router_max_batch)
        app.state.http = httpx.AsyncClient()
        app.state.service = ChatService(config, policies, balancer, live, batcher, telemetry.sinks)
        _announce(settings, balancer)
        try:
            yield
        finally:
            await batcher.aclose()
            for sink in telemetry.sinks:
                await sink.aclose()
            await app.state.http.aclose()
            if owned:
                for backend in live.values():
                    await backend.aclose()

    app = FastAPI(title="Tiergate", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.config = config
    app.state.balancer = balancer
    app.state.catalogue = lambda: catalogue(config, policies, balancer, _scorer_info(scorer))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(api_routes)
    if telemetry.router is not None:
        app.include_router(telemetry.router)
    return app


def _scorer_info(scorer: Scorer) -> dict[str, Any]:
    info = getattr(scorer, "info", None)
    return dict(info) if isinstance(info, dict) else {"name": type(scorer).__name__}


def _announce(settings: Settings, balancer: Balancer) -> None:
    for name, target in balancer.targets.items():
        if not target.available:
            log.warning(
                "deployment %s is unavailable: %s is not set; its tier falls back",
                name,
                target.deployment.api_key_env,
            )
