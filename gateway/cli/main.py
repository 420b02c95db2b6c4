"""The `tiergate` command: `tiergate = "gateway.cli.main:main"`.

Each command group lives beside the code it drives and registers itself here through one hook,
`register(subparsers)`: `serve` (gateway.cli.serve), `up` and `models` (gateway.local.cli), `router`
(router.training.cli; `router explain` from gateway.cli.explain, which needs the gateway's config),
`logs` (gateway.cli.logs), `db` (gateway.cli.db). Command modules import nothing heavy at import
time, so `tiergate --help` is instant; the work is imported when a command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "gateway.cli.serve",
    "gateway.local.cli",
    "router.training.cli",
    "gateway.cli.explain",
    "gateway.cli.logs",
    "gateway.cli.db",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tiergate",
        description="OpenAI-compatible gateway routing each request to the cheapest model tier "
        "that can serve it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
