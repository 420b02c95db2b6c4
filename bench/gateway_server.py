"""Tiergate as the benchmark runs it: `tiergate serve`'s app and server settings, one process.

The one difference from `tiergate serve` is the scorer: `--scorer fake` uses the bench's instant
scorer (bench/scoring.py, so the figures show the gateway's routing path without the encoder; the
router's own latency is measured by bench/router_latency.py), `--scorer router` the shipped trained
router.
`--set key=value` overrides a uvicorn option (`loop=asyncio`, `http=h11`, `access_log=true`), which
is how the benchmark measures what uvloop, httptools and the access log cost. `--asyncpg-log URL`
writes the request log to Postgres through asyncpg instead of psycopg (bench/writers.py),
which is how bench/requestlog.py compares the two drivers.

Run: `python -m bench.gateway_server --config bench.yaml --port 9001 --log-dir /tmp/logs`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from gateway.app import create_app
from gateway.chat.scoring import Scorer
from gateway.lifecycle import Drain
from gateway.server import run
from gateway.settings import Settings
from gateway.storage import Database
from gateway.telemetry.record import Telemetry
from gateway.telemetry.requestlog import RequestLog


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return int(text) if text.isdigit() else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--log-dir", required=True, type=Path)
    parser.add_argument("--scorer", choices=("fake", "router"), default="fake")
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE")
    parser.add_argument("--asyncpg-log", default=None, metavar="URL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    scorer: Scorer | None = None
    if args.scorer == "fake":
        from bench.scoring import InstantScorer

        scorer = InstantScorer()
    settings = Settings(
        config_path=args.config, host="127.0.0.1", port=args.port, log_dir=args.log_dir
    )
    sinks: list[Telemetry] = []
    if args.asyncpg_log:
        from bench.writers import AsyncpgWriter

        Database.open(args.asyncpg_log).close()  # migrated, as the gateway would
        settings = settings.model_copy(update={"request_log": False})
        sinks.append(RequestLog(AsyncpgWriter(args.asyncpg_log)))
    overrides: dict[str, Any] = {"log_level": "warning"}
    overrides.update((k, _value(v)) for k, v in (item.split("=", 1) for item in args.set))
    drain = Drain(settings.drain_grace_s)
    app = create_app(settings, scorer=scorer, sinks=sinks, drain=drain)
    run(app, settings, drain, **overrides)


if __name__ == "__main__":
    main()
