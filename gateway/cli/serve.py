"""`tiergate serve`: the gateway in front of already-running upstreams.

`register` declares the command (and the `--host`/`--port` pair that `tiergate up` shares);
`serve` builds the settings and the app, turning a bad config into a one-line error and exit code 2
before anything listens, then runs it under uvicorn (`gateway.server`). With `--workers N` (N > 1)
it checks the same, then a supervisor runs N such gateways on one port (`gateway.workers`).
"""

from __future__ import annotations

import argparse
import logging
import socket
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
    p.add_argument(
        "--workers",
        default=None,
        metavar="N|auto",
        help="gateway processes sharing the port; auto = the CPUs this process may use (affinity "
        "and cgroup quota). Default 1, or auto when the config shares limits through Redis "
        "(TIERGATE_WORKERS). More than 1 with rate limits or budgets counted in memory is refused",
    )
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    host, port = listen_address(args)
    return serve(config_path=args.config, host=host, port=port, workers=args.workers)


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


def serve(config_path: str, host: str, port: int, workers: str | None = None) -> int:
    from gateway.app import create_app
    from gateway.config import ConfigError, load_config
    from gateway.lifecycle import Drain
    from gateway.server import run
    from gateway.settings import Settings, prometheus_multiproc_dir
    from gateway.storage import StorageError
    from gateway.workers import clean_multiproc_dir, refusal, resolve_workers, usable_cpus

    _logging()
    settings = Settings(config_path=Path(config_path), host=host, port=port)
    drain = Drain(settings.drain_grace_s)  # SIGTERM begins it (gateway.server)
    try:
        config = load_config(settings.config_path)
        problem = unwritable_log_dir(settings, config)
        cpus = usable_cpus()
        count = resolve_workers(workers if workers is not None else settings.workers, config, cpus)
        problem = problem or refusal(count, config)
        if problem is not None:
            print(f"tiergate: {problem}", file=sys.stderr)
            return 2
        multiproc = prometheus_multiproc_dir()
        if multiproc is not None:
            clean_multiproc_dir(multiproc)
        if count > 1:
            return _serve_workers(settings, config, count, cpus)
        app = create_app(settings, drain=drain)
    except (ConfigError, StorageError, ValueError) as exc:
        print(f"tiergate: {exc}", file=sys.stderr)
        return 2
    run(app, settings, drain)
    return 0


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _serve_workers(settings: Settings, config: GatewayConfig, count: int, cpus: int) -> int:
    """Prepare what the workers share (database migrated, metrics directory, encoder threads,
    the socket), then supervise `count` of them until SIGTERM or SIGINT."""
    from prometheus_client.multiprocess import mark_process_dead

    from gateway.server import DRAIN_MARGIN_S
    from gateway.settings import export_to_workers, prometheus_multiproc_dir
    from gateway.storage.migrate import migrate
    from gateway.telemetry.sinks import database_url
    from gateway.workers import Supervisor, bind, clean_multiproc_dir, encoder_threads

    if settings.request_log or config.responses.store:
        migrate(database_url(settings, config))  # once, before the workers open it
    multiproc = prometheus_multiproc_dir()
    temporary = None
    if multiproc is None and settings.metrics:
        temporary = tempfile.TemporaryDirectory(prefix="tiergate-metrics-")
        multiproc = Path(temporary.name)
        clean_multiproc_dir(multiproc)
    threads = encoder_threads(cpus, count)
    export_to_workers(multiproc_dir=multiproc, encoder_threads=threads)
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        print(f"tiergate: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 2

    def forget(pid: int) -> None:
        if multiproc is not None:
            mark_process_dead(pid, str(multiproc))  # type: ignore[no-untyped-call]

    logging.getLogger(__name__).info(
        "tiergate: %d workers on %s:%d (%d usable CPUs), encoder threads %s each",
        count,
        settings.host,
        settings.port,
        cpus,
        threads,
    )
    try:
        args = (str(settings.config_path), settings.host, settings.port)
        stop_s = settings.drain_grace_s + DRAIN_MARGIN_S + 5.0
        return Supervisor(_worker, args, sock, count, on_exit=forget, stop_s=stop_s).run()
    finally:
        sock.close()
        if temporary is not None:
            temporary.cleanup()


def _worker(sock: socket.socket, config_path: str, host: str, port: int) -> None:
    """One worker process (spawned): the gateway `serve` would run, on the shared socket."""
    from gateway.app import create_app
    from gateway.lifecycle import Drain
    from gateway.server import run
    from gateway.settings import Settings

    _logging()
    settings = Settings(config_path=Path(config_path), host=host, port=port)
    drain = Drain(settings.drain_grace_s)
    run(create_app(settings, drain=drain), settings, drain, sockets=[sock])
