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
from fastapi import Depends, FastAPI, Request

from gateway.access.counters import build_store
from gateway.access.keys import KeyRing
from gateway.access.quota import Quota
from gateway.access.request_limits import BodySizeLimit
from gateway.api.chat import router as api_routes
from gateway.api.models import catalogue
from gateway.chat.attempt import Resilience
from gateway.chat.scoring import BatchingScorer, Scorer
from gateway.chat.service import ChatService
from gateway.config import load_config
from gateway.protocol.errors import install_error_handlers
from gateway.settings import Settings
from gateway.telemetry.collector import ReliabilityCollector
from gateway.telemetry.prometheus import GatewayMetrics
from gateway.telemetry.sinks import build_telemetry
from gateway.upstream.balancer import Balancer
from gateway.upstream.base import Backend, Target
from gateway.upstream.litellm import LiteLLMBackend
from gateway.upstream.openai import OpenAICompatibleBackend
from policies import build_policies

log = logging.getLogger(__name__)


def load_scorer(settings: Settings) -> Scorer:
    """The trained router from its artifact (the shipped one by default)."""
    from router import load_router

    return load_router(settings.router_artifact, cache_size=settings.router_cache_size)


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
    policies = build_policies(config.policies, config.tier_facts(), calibrate)
    balancer = Balancer(config, targets)
    telemetry = build_telemetry(settings, config)
    keys = KeyRing.from_config(
        config.keys, environ, metrics_require_key=config.limits.metrics_require_key
    )
    if not settings.log_content:
        _hold_content_loggers()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = backends is None
        # Only the backends the config uses: importing litellm takes seconds and ~180 MB of RSS.
        used = {d.backend for d in config.deployments.values()}
        factories = (("litellm", LiteLLMBackend), ("openai-compatible", OpenAICompatibleBackend))
        live: Mapping[str, Backend] = backends or {n: f() for n, f in factories if n in used}
        batcher = BatchingScorer(scorer, settings.router_max_batch)
        app.state.http = httpx.AsyncClient()
        resilience = Resilience(config.deployments)
        quota = Quota(build_store(config.redis_url), on_error=config.limits.on_redis_error)
        app.state.service = ChatService(
            config,
            policies,
            balancer,
            live,
            batcher,
            telemetry.sinks,
            resilience=resilience,
            quota=quota,
        )
        collector = ReliabilityCollector(resilience, quota)
        registries = [s.registry for s in telemetry.sinks if isinstance(s, GatewayMetrics)]
        for registry in registries:
            registry.register(collector)
        _announce(settings, balancer)
        keys.announce()
        try:
            yield
        finally:
            for registry in registries:
                registry.unregister(collector)
            await quota.aclose()
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
    app.state.keys = keys
    app.state.catalogue = lambda: catalogue(config, policies, balancer, _scorer_info(scorer))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(api_routes)
    if telemetry.router is not None:
        app.include_router(telemetry.router, dependencies=[Depends(_metrics_auth)])
    return app


CONTENT_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "openai", "httpcore")
"""Libraries that log whole requests (prompts, options) at DEBUG."""


def _hold_content_loggers() -> None:
    """No prompt or completion text in logs, even with the root logger at DEBUG."""
    for name in CONTENT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:  # NOTSET too: the root may go to DEBUG later
            logger.setLevel(logging.WARNING)


def _metrics_auth(request: Request) -> None:
    """`/metrics` takes any valid key when `limits.metrics_require_key` is set."""
    keys: KeyRing = request.app.state.keys
    keys.authenticate_metrics(request.headers)


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
