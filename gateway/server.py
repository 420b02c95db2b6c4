"""`tiergate serve`: build the app from settings and run it under uvicorn."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from policies import ConfigError


def serve(config_path: str, host: str, port: int) -> int:
    import uvicorn

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
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level="info", timeout_graceful_shutdown=5
    )
    return 0
