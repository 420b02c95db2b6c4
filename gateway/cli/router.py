"""`tiergate router`: the router's commands (`router.training.cli`), given the gateway's reader
of stored outcomes for `train --from-log` and `train-verifier --from-log`.

The router package knows nothing of the gateway's database; this module hands it
`read_outcomes(url, since)`, which opens the database the way `tiergate logs` does (`--from-log
URL`, else TIERGATE_REQUEST_LOG_URL, else the SQLite file in TIERGATE_LOG_DIR), reads the
unexpired outcome rows and turns them into the router's plain `LoggedOutcome`s. Importing this
module costs nothing: both are imported when a command runs.
"""

from __future__ import annotations

import argparse
import importlib
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.logged import LoggedOutcome

ROUTER_COMMANDS = "router.training.cli"
"""Offline code, named as `gateway.cli.main` names every command module: never imported by the
running gateway."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    importlib.import_module(ROUTER_COMMANDS).register(sub, read_log=read_outcomes)


def read_outcomes(url: str | None, since: str) -> list[LoggedOutcome]:
    """The stored outcomes (every kind) newer than `since` (`7d`, `all` ...)."""
    from gateway.cli.logs import log_url, parse_since
    from gateway.storage import Database
    from router.errors import RouterError
    from router.logged import LoggedOutcome
    from router.vectors import from_bytes

    try:
        back = parse_since(since)
    except argparse.ArgumentTypeError as exc:
        raise RouterError(str(exc)) from None
    database = Database.open(log_url(url, None))
    try:
        rows = database.store.outcomes(since=None if back is None else time.time() - back)
    finally:
        database.close()
    return [
        LoggedOutcome(
            request_id=row.request_id,
            kind=row.kind,
            verdict=row.verdict,
            weak_tier=row.weak_tier,
            category=row.category,
            embedding=None if row.embedding is None else from_bytes(row.embedding),
            embedding_model=row.embedding_model,
            features=row.features,
            created_at=row.created_at,
        )
        for row in rows
    ]
