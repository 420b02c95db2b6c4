"""Running the app under uvicorn, the way `tiergate serve` and the benchmarks do.

uvloop and httptools, named rather than left to uvicorn's "auto", so a missing one fails at start
instead of silently costing throughput; httptools through `gateway.connections.GuardedProtocol`
(header and body timeouts, a header size limit, a connection cap) with uvicorn's own keep-alive
timeout, all from the settings. No access log: every request already gets a request-log row and
metrics, and a log line per request costs CPU on the event loop.

SIGTERM drains (`gateway.lifecycle.Drain`): `/ready` turns 503 at once, the listening socket
closes, requests in flight get `drain_grace_s` to finish and the rest are ended cleanly, the
app's shutdown writes the request log's last rows, and the process exits 0. SIGINT (Ctrl-C) is
uvicorn's as before: a second one forces the exit.
"""

from __future__ import annotations

import logging
import resource
import signal
import socket
from types import FrameType
from typing import Any

import uvicorn

from gateway.connections import ConnectionGuard
from gateway.lifecycle import Drain
from gateway.settings import Settings

log = logging.getLogger(__name__)

DRAIN_MARGIN_S = 10.0
"""After the drain's grace: time for ended streams to flush and the last requests to finish,
before uvicorn cancels what is left."""


class GatewayServer(uvicorn.Server):
    """uvicorn's server, draining on SIGTERM instead of cutting what is in flight."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        # Not recorded for uvicorn to raise again once shut down: a drained exit is a 0.
        self.drain.begin()
        self.should_exit = True


def connection_guard(settings: Settings) -> ConnectionGuard:
    """The connection limits of `settings`; the connection cap at most half the process's
    open-file limit (the other half is for upstream connections, the log, the router)."""
    most = settings.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft // 2 < most:
        log.warning(
            "TIERGATE_MAX_CONNECTIONS is %d but the open-file limit is %d: at most %d client "
            "connections (raise `ulimit -n` for more)",
            most,
            soft,
            soft // 2,
        )
        most = max(1, soft // 2)
    return ConnectionGuard(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_header_bytes=settings.max_header_bytes,
        max_connections=most,
    )


def server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's config for `app` as `tiergate serve` runs it; `overrides` win (the benchmarks
    pass `http="h11"`, `loop="asyncio"`, `access_log=True` ...)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": connection_guard(settings).protocol,
        "access_log": False,
        "log_level": "info",
        "timeout_keep_alive": settings.keepalive_timeout_s,
        "timeout_graceful_shutdown": settings.drain_grace_s + DRAIN_MARGIN_S,
        **overrides,
    }
    return uvicorn.Config(app, **options)


def run(
    app: Any,
    settings: Settings,
    drain: Drain | None = None,
    sockets: list[socket.socket] | None = None,
    **overrides: Any,
) -> None:
    """Serve `app` the way `tiergate serve` does until SIGTERM or SIGINT (benchmarks call this
    too, with `overrides`). `drain` must be the one the app was built with. `sockets`: already
    listening (a worker of `tiergate serve --workers`, gateway.workers), instead of binding."""
    config = server_config(app, settings, **overrides)
    server = GatewayServer(config, drain if drain is not None else Drain(settings.drain_grace_s))
    server.run(sockets=sockets)
    if not server.started:  # as uvicorn.run: a failed start-up is an error exit
        raise SystemExit(3)
