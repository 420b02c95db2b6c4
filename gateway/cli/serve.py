"""`tiergate serve`: the gateway in front of already-running upstreams.

`register` declares the command (and the `--host`/`--port` pair that `tiergate up` shares);
`serve` builds the settings and the app, turning a bad config into a one-line error and exit code 2
before anything listens, then runs it under uvicorn (`gateway.server`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from gateway.settings import Settings


def add_listen_arguments(parser: argparse.ArgumentParser, port_help: str) -> None:
    """`--host` and `--port` for the gateway, defaulting to TIERGATE_HOST and TIERGATE_PORT;
    shared by `serve` and `up` so both listen where the same environment says. The defaults are
    read when the command runs (`listen_address`), so `--help` reads no settings."""
    parser.add_argument("--host", default=None)
    parser.add_argument(
        "--port", type=int, default=None, help=f"{port_help} (default 8080, or TIERGATE_PORT)"
    )


def listen_address(args: argparse.Namespace) -> tuple[str, int]:
    """(host, port): the command line's, else the settings' (TIERGATE_HOST, TIERGATE_PORT)."""
    from gateway.settings import CommandSettings

    host: str | None = args.host
    port: int | None = args.port
    if host is None or port is None:
        settings = CommandSettings()
        host = settings.host if host is None else host
        port = settings.port if port is None else port
    return host, port


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the gateway in front of already-running upstreams")
    p.add_argument("--config", required=True, help="YAML config (see deploy/examples/)")
    add_listen_arguments(p, "port to listen on")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    host, port = listen_address(args)
    return serve(config_path=args.config, host=host, port=port)


def unwritable_log_dir(settings: Settings, config: GatewayConfig) -> str | None:
    """Why the SQLite database cannot be written where the settings put it (one line), or None.
    Checked before anything else loads, so a read-only mount fails in a second with a clear word.
    Only for SQLite: a Postgres database has no directory here (an unreachable one is a
    `StorageError` when the app opens it)."""
    from gateway.storage import DB_FILENAME
    from gateway.telemetry.sinks import database_url

    if not (settings.request_log or config.responses.store):
        return None  # no database at all
    url = database_url(settings, config)
    if url.dialect != "sqlite":
        return None
    where = url.path.parent
    hint = "set TIERGATE_LOG_DIR" if url.path == settings.log_dir / DB_FILENAME else "fix its URL"
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the log directory {where} ({exc.strerror}); {hint}"
    try:
        with tempfile.TemporaryFile(dir=where, prefix=".tiergate-write-test-"):
            pass
    except OSError as exc:
        return f"cannot write in the log directory {where} ({exc.strerror}); {hint}"
    return None


def serve(config_path: str, host: str, port: int) -> int:
    from gateway.app import create_app
    from gateway.config import ConfigError, load_config
    from gateway.lifecycle import Drain
    from gateway.server import run
    from gateway.settings import Settings
    from gateway.storage import StorageError

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings(config_path=Path(config_path), host=host, port=port)
    drain = Drain(settings.drain_grace_s)  # SIGTERM begins it (gateway.server)
    try:
        problem = unwritable_log_dir(settings, load_config(settings.config_path))
        if problem is not None:
            print(f"tiergate: {problem}", file=sys.stderr)
            return 2
        app = create_app(settings, drain=drain)
    except (ConfigError, StorageError) as exc:
        print(f"tiergate: {exc}", file=sys.stderr)
        return 2
    run(app, settings, drain)
    return 0
