"""The `tiergate` command.

Each command group lives beside the code it drives and registers itself here through one hook,
`register(subparsers)`: `serve` (this module), `up` and `models` (gateway.local), `router`
(router.cli), `logs` (gateway.logcli). Command modules import nothing heavy at import time, so
`tiergate --help` is instant; the work is imported when a command runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

COMMAND_MODULES = ("gateway.local.cli", "router.cli", "gateway.logcli")


def _serve(args: argparse.Namespace) -> int:
    from gateway.server import serve

    return serve(config_path=args.config, host=args.host, port=args.port)


def add_listen_arguments(parser: argparse.ArgumentParser, port_help: str) -> None:
    """`--host` and `--port` for the gateway, defaulting to TIERGATE_HOST and TIERGATE_PORT;
    shared by `serve` and `up` so both listen where the same environment says."""
    parser.add_argument("--host", default=os.environ.get("TIERGATE_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("TIERGATE_PORT", "8080")),
        help=f"{port_help} (default 8080, or TIERGATE_PORT)",
    )


def _register_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the gateway in front of already-running upstreams")
    p.add_argument("--config", required=True, help="YAML config (see deploy/examples/)")
    add_listen_arguments(p, "port to listen on")
    p.set_defaults(func=_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tiergate",
        description="OpenAI-compatible gateway routing each request to a small or a large model.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_serve(sub)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
