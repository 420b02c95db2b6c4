"""The FastAPI application: wiring only. Every service is built here, once, and handed out by
`gateway.deps`.

`create_app` does the slow, fallible work (read the config, load the router, resolve thresholds)
before the server listens, so a bad config or a missing model fails at start with a clear message;
the lifespan builds what belongs to the event loop (backends, the scorer's batcher, the quota's
counter store, the chat service). Tests pass their own scorer, backends, environment (for
`api_key_env` and `key_env`) or extra telemetry sinks instead of monkeypatching globals or reaching
into `app.state`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpx
from fastapi import Depends, FastAPI

from gateway.access.authenticate import HeaderAuthentication
from gateway.access.counters import build_store
from gateway.access.keys import KeyRing
from gateway.access.quota import Quota
from gateway.access.request_limits import BodySizeLimit
from gateway.api import admin, chat, embeddings, feedback, health, models, responses
from gateway.api.models import catalogue
from gateway.chat.attempt import Attempts
from gateway.chat.embeddings import EmbeddingsService
from gateway.chat.escalation import AnswerVerifier, Escalation, build_escalation
from gateway.chat.learning import Learning
from gateway.chat.outcomes import OutcomeKeeper, RecentAnswers
from gateway.chat.plan import Planner
from gateway.chat.reload import FileGeneration, Generation, Reloader, StoreGeneration
from gateway.chat.responses import ResponsesService
from gateway.chat.scoring import BatchingScorer, Classifier, Scorer, load_classifier
from gateway.chat.service import ChatService
from gateway.chat.shadow import ShadowBudget, ShadowJudge
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.deps import metrics_access
from gateway.lifecycle import Drain, Readiness
from gateway.protocol.errors import install_error_handlers
from gateway.protocol.openai import ModelList
from gateway.reliability.breaker import Breakers
from gateway.reliability.concurrency import Concurrency
from gateway.settings import Settings, environ
from gateway.storage import Database
from gateway.storage.responses import DatabaseResponseStore
from gateway.telemetry.collector import ReliabilityCollector
from gateway.telemetry.prometheus import GatewayMetrics
from gateway.telemetry.record import Telemetry
from gateway.telemetry.sinks import build_telemetry, database_url
from gateway.upstream.balancer import Balancer
from gateway.upstream.base import Backend, Target
from gateway.upstream.litellm import LiteLLMBackend
from gateway.upstream.openai import OpenAICompatibleBackend
from gateway.upstream.probes import UpstreamStatus
from policies import build_policies
from router import Router

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
    sinks: Sequence[Telemetry] = (),
    verifiers: Mapping[str, AnswerVerifier] | None = None,
    drain: Drain | None = None,
    classifier: Classifier | None = None,
) -> FastAPI:
    """The gateway for `settings`.

    `scorer`: the router (default: the trained one, `settings.router_artifact`). `classifier`:
    names operator routes (default: fitted from the config's `routes:` on the scorer's encoder;
    ignored when the config has none). `backends`: by
    backend name, owned by the caller (default: the ones the config uses, closed at shutdown).
    `env`: where `api_key_env` and `key_env` are looked up (default: the process environment).
    `sinks`: telemetry sinks that hear about every request after the configured ones (metrics,
    request log); the caller owns them. `verifiers`: answer verifiers by the name policies give
    in `escalate.verifier` (default: loaded, `default` being the shipped one). `drain`: the
    process's drain, which SIGTERM begins (`gateway.server`); default: one of
    `settings.drain_grace_s` that nothing begins.
    """
    config = load_config(settings.config_path)
    variables = environ() if env is None else env
    targets = {n: Target.from_config(n, d, variables) for n, d in config.deployments.items()}
    scorer = scorer if scorer is not None else load_scorer(settings)
    if not config.routes:
        classifier = None
    elif classifier is None:
        classifier = load_classifier(config, scorer)
    _check_classifier(config, classifier)
    policies = build_policies(config.policies, config.tier_facts(), scorer.threshold_for_fraction)
    encoder = scorer.encoder if isinstance(scorer, Router) else None
    escalation = build_escalation(config, verifiers, encoder)
    concurrency = Concurrency(config.deployments)
    balancer = Balancer(config, targets, concurrency)
    # The database (request log, stored responses, outcomes): migrated now, shared by all.
    # Stored responses need it even with the request log off.
    wants_database = settings.request_log or config.responses.store
    database = Database.open(database_url(settings, config)) if wants_database else None
    telemetry = build_telemetry(settings, config, database)
    retention = settings.outcome_retention_days
    keeper = OutcomeKeeper(
        database,
        scorer,
        _feature_verifier(escalation, encoder) if database is not None else None,
        retention_s=None if retention is None else retention * 86400.0,
        keep_content=settings.outcome_content,
    )
    reloader = Reloader(
        config,
        scorer,
        policies,
        escalation,
        keeper,
        artifact_dir=settings.router_artifact,
        cache_size=settings.router_cache_size,
    )
    keys = KeyRing.from_config(
        config.keys, variables, metrics_require_key=config.limits.metrics_require_key
    )
    if not settings.log_content:
        _hold_content_loggers()
    drain = drain if drain is not None else Drain(settings.drain_grace_s)
    # /ready watches the SQLite file's directory (a Postgres database has none here).
    sqlite = database is not None and database.url.dialect == "sqlite"
    readiness = Readiness(drain, database.url.path.parent if database and sqlite else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        drain.bind(asyncio.get_running_loop())
        owned = backends is None
        # Only the backends the config uses: importing litellm takes seconds and ~180 MB of RSS.
        used = {d.backend for d in config.deployments.values()}
        factories = (("litellm", LiteLLMBackend), ("openai-compatible", OpenAICompatibleBackend))
        live: Mapping[str, Backend] = backends or {n: f() for n, f in factories if n in used}
        batcher = BatchingScorer(scorer, settings.router_max_batch, classifier)
        http = httpx.AsyncClient()
        breakers = Breakers(config.deployments)
        quota = Quota(
            build_store(config.redis_url, config.limits.redis_timeout_s),
            on_error=config.limits.on_redis_error,
        )
        attempts = Attempts(live, breakers, concurrency, quota)
        planner = Planner(config, policies, balancer, batcher, quota)
        quality = next((s.quality for s in telemetry.sinks if isinstance(s, GatewayMetrics)), None)
        shadow = None
        if any(p.shadow is not None for p in config.policies.values()):
            capable = config.tiers[config.tier_order()[-1]].deployments
            shadow = ShadowJudge(
                config,
                attempts,
                [balancer.targets[name] for name in capable],
                balancer.targets,
                ShadowBudget(quota.store),
                keeper,
                quality,
            )
        learning = Learning(
            keeper,
            shadow,
            quality,
            recent=RecentAnswers(settings.recent_answers),
            reserve_tokens=config.limits.reserve_completion_tokens,
            tiers=config.tier_order(),
        )
        app.state.learning = learning
        app.state.service = ChatService(
            config,
            planner,
            attempts,
            quota,
            [*telemetry.sinks, *sinks],
            drain,
            escalation,
            keepalive_s=settings.escalation_keepalive_s,
            learning=learning,
        )
        stored = (
            DatabaseResponseStore(database, retention_days=config.responses.retention_days)
            if database is not None and config.responses.store
            else None
        )
        app.state.responses = ResponsesService(config, app.state.service, stored)
        app.state.embeddings = EmbeddingsService(
            config, balancer.targets, attempts, quota, [*telemetry.sinks, *sinks]
        )
        app.state.quota = quota
        app.state.status = UpstreamStatus(http, config, balancer.targets, breakers)
        generation: Generation = (
            StoreGeneration(quota.store)
            if config.redis_url
            else FileGeneration(settings.log_dir / "reload-generation")
        )
        reloader.attach(batcher, planner, generation)
        await reloader.start()
        watcher = asyncio.create_task(reloader.watch(settings.reload_poll_s), name="reload-watch")
        hangup = _on_hangup(reloader)
        collector = ReliabilityCollector(breakers, concurrency, quota, lambda: attempts.retries)
        prometheus = [s for s in telemetry.sinks if isinstance(s, GatewayMetrics)]
        for metric_sink in prometheus:
            metric_sink.add_collector(collector)
        _announce(balancer)
        keys.announce()
        tidy = None
        if database is not None:
            log.info("database: %s", database.url.redacted)
            tidy = asyncio.create_task(database.keep_tidy(), name="tiergate-db-tidy")
        try:
            yield
        finally:
            for metric_sink in prometheus:
                metric_sink.remove_collector(collector)
            hangup()
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
            await learning.aclose()
            await quota.aclose()
            await batcher.aclose()
            for sink in telemetry.sinks:
                await sink.aclose()
            if tidy is not None:
                tidy.cancel()
                with suppress(asyncio.CancelledError):
                    await tidy
            if database is not None:
                await database.aclose()
            await http.aclose()
            if owned:
                for backend in live.values():
                    await backend.aclose()

    def current_catalogue() -> ModelList:
        return catalogue(config, reloader.policies, balancer, dict(reloader.scorer.info))

    app = FastAPI(title="Tiergate", version="0.1.0", lifespan=lifespan)
    app.state.keys = keys
    app.state.readiness = readiness
    app.state.database = database
    app.state.reloader = reloader
    app.state.catalogue = current_catalogue
    app.state.limits = config.limits
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeaderAuthentication, keys=keys)  # outermost: before the body is read
    install_error_handlers(app)
    for module in (chat, responses, embeddings, models, health, admin, feedback):
        app.include_router(module.router)
    if telemetry.router is not None:
        app.include_router(telemetry.router, dependencies=[Depends(metrics_access)])
    return app


def _check_classifier(config: GatewayConfig, classifier: Classifier | None) -> None:
    if classifier is not None and list(classifier.names) != list(config.routes):
        raise ConfigError(
            f"the route classifier knows {list(classifier.names)}; the config's routes are "
            f"{list(config.routes)}"
        )


def _on_hangup(reloader: Reloader) -> Callable[[], None]:
    """SIGHUP reloads the artifacts everywhere (in the main thread's loop only: tests serve
    apps from other threads). Returns what undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[Any]] = set()

    def hangup() -> None:
        task = loop.create_task(_reload_logged(reloader))
        pending.add(task)
        task.add_done_callback(pending.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, hangup)
    except (NotImplementedError, RuntimeError, ValueError):
        return lambda: None

    def undo() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return undo


async def _reload_logged(reloader: Reloader) -> None:
    try:
        await reloader.reload_everywhere()
    except Exception as exc:
        log.error("SIGHUP: reload failed: %s", exc)


def _feature_verifier(escalation: Escalation, encoder: Any) -> AnswerVerifier | None:
    """The verifier whose features outcome rows keep: a policy's (the first named), else the
    shipped one on the router's encoder; None without a trained router (no encoder)."""
    if escalation.verifiers:
        return next(iter(escalation.verifiers.values()))
    if encoder is None:
        return None
    from router import load_verifier

    return load_verifier(encoder=encoder)


CONTENT_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "openai", "httpcore")
"""Libraries that log whole requests (prompts, options) at DEBUG."""


def _hold_content_loggers() -> None:
    """No prompt or completion text in logs, even with the root logger at DEBUG."""
    for name in CONTENT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:  # NOTSET too: the root may go to DEBUG later
            logger.setLevel(logging.WARNING)


def _announce(balancer: Balancer) -> None:
    for name, target in balancer.targets.items():
        if not target.available:
            log.warning(
                "deployment %s is unavailable: %s is not set; its tier falls back",
                name,
                target.deployment.api_key_env,
            )
