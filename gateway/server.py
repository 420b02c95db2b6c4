"""Running the app under uvicorn, the way `tiergate serve` and the benchmarks do."""

from __future__ import annotations

import socket
from typing import Any


def run(
    app: Any, host: str, port: int, sockets: list[socket.socket] | None = None, **overrides: Any
) -> None:
    """Serve `app` the way `tiergate serve` does (benchmarks call this too, with `overrides`).

    uvloop and httptools, named rather than left to uvicorn's "auto", so a missing one fails at
    start instead of silently costing throughput. No access log: every request already gets a
    request-log row and metrics, and a log line per request costs CPU on the event loop.
    `sockets`: already listening (a worker of `tiergate serve --workers`), instead of binding.
    """
    import uvicorn

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "log_level": "info",
        "timeout_graceful_shutdown": 5,
        **overrides,
    }
    server = uvicorn.Server(uvicorn.Config(app, **options))
    server.run(sockets=sockets)
    if not server.started:  # as uvicorn.run: a failed start-up is an error exit
        raise SystemExit(3)
