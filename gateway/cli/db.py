"""`tiergate db migrate` and `tiergate db status`: the gateway's database schema from the shell.

The gateway migrates its database at start, so these are for operators who migrate before a
rollout (a Kubernetes Job, a deploy step) or want to see where a database stands. Both take
`--url` (default: TIERGATE_REQUEST_LOG_URL, else the SQLite file in TIERGATE_LOG_DIR) and print
the URL with its password masked. Importing this module costs nothing.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="the gateway's database: migrate its schema, show its version")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")
    url_help = (
        "sqlite:///path or postgresql://user:password@host:5432/db (default: "
        "$TIERGATE_REQUEST_LOG_URL, else $TIERGATE_LOG_DIR/requests.db)"
    )
    migrate = db_sub.add_parser("migrate", help="apply the migrations the database lacks")
    migrate.add_argument("--url", default=None, help=url_help)
    migrate.set_defaults(func=_migrate)
    status = db_sub.add_parser("status", help="list applied and pending migrations")
    status.add_argument("--url", default=None, help=url_help)
    status.set_defaults(func=_status)


def _migrate(args: argparse.Namespace) -> int:
    from gateway.cli.logs import log_url
    from gateway.storage import StorageError, migrate

    try:
        url = log_url(args.url, None)
        applied = migrate(url)
    except StorageError as exc:
        print(f"tiergate db migrate: {exc}", file=sys.stderr)
        return 2
    for migration in applied:
        print(f"applied {migration.version:04d}_{migration.name}")
    latest = max((m.version for m in applied), default=None)
    if latest is None:
        print(f"{url.redacted}: up to date")
    else:
        print(f"{url.redacted}: now at version {latest}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from gateway.cli.logs import log_url
    from gateway.storage import StorageError, migrations
    from gateway.storage.migrate import applied

    try:
        url = log_url(args.url, None)
        done = applied(url)
    except StorageError as exc:
        print(f"tiergate db status: {exc}", file=sys.stderr)
        return 2
    print(url.redacted)
    known = {m.version for m in migrations()}
    for migration in migrations():
        state = "applied" if migration.version in done else "pending"
        print(f"  {migration.version:04d}_{migration.name}  {state}")
    for version in sorted(set(done) - known):
        print(f"  {version:04d}_{done[version]}  applied (newer than this gateway)")
    return 0 if known <= set(done) else 1
