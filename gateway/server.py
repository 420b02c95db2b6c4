"""`tiergate serve`: build the app from settings and run it under uvicorn."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from gateway.config import ConfigError


def serve(config_path: str, host: str, port: int) -> int:
    from gateway.app import create_app
    from gateway.settings import Settings

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings(config_path=Path(config_path), host=host, port=port)
    try:
        app = create_app(settings)
    except ConfigError as exc:
        print(f"tiergate: {exc}", file=sys.stderr)
        return 2
    run(app, settings.host, settings.port)
    return 0


def run(app: Any, host: str, port: int, **overrides: Any) -> None:
    """Serve `app` the way `tiergate serve` does (benchmarks call this too, with `overrides`).

    uvloop and httptools, named rather than left to uvicorn's "auto", so a missing one fails at
    start instead of silently costing throughput. No access log: every request already gets a
    request-log row and metrics, and a log line per request costs CPU on the event loop.
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
    uvicorn.run(app, **options)
