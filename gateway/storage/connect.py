"""Opening connections, one place per dialect, and telling a database that is away from a bug.

This module owns what the two drivers need to know: SQLite files in WAL mode (readers never block
the writer, `tiergate logs` reads beside a live gateway) with a busy timeout; Postgres through
psycopg 3 with bounded waits everywhere (connect, statements, and TCP keepalives so that a
vanished server is noticed in seconds, not at the kernel's two hours), since a writer stuck in the
driver could not honour a shutdown. `unavailable(exc)` is the one rule for "retry later" versus
"this write is wrong": connection-level failures and timeouts are the former, anything else (a bad
value, a missing column) the latter. psycopg is imported only when a Postgres URL is used.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.storage.errors import StorageError, Unavailable
from gateway.storage.url import DatabaseURL

__all__ = ["StorageError", "Unavailable", "connect_postgres", "connect_sqlite", "unavailable"]

if TYPE_CHECKING:
    import psycopg

SQLITE_BUSY_TIMEOUT_S = 5.0
POSTGRES_CONNECT_TIMEOUT_S = 5
POSTGRES_STATEMENT_TIMEOUT_MS = 10_000
"""A statement running longer is cancelled (the request log retries its batch later)."""
POSTGRES_KWARGS: dict[str, Any] = {
    "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
    "application_name": "tiergate",
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}
"""libpq options, given beside the URL (the URL's own parameters, such as sslmode, still apply)."""


def connect_sqlite(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the SQLite file; read-only ones never create, migrate or lock it."""
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False
        )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    return conn


def connect_postgres(
    url: DatabaseURL, *, autocommit: bool = False, readonly: bool = False
) -> psycopg.Connection[Any]:
    """A psycopg connection with the bounded waits above; raises `Unavailable` if it cannot."""
    import psycopg

    try:
        conn = psycopg.connect(url.url, autocommit=True, **POSTGRES_KWARGS)
    except psycopg.Error as exc:
        message = f"cannot reach the database at {url.redacted}: {_first_line(exc)}"
        raise Unavailable(message) from exc
    try:
        conn.execute(f"SET statement_timeout = {POSTGRES_STATEMENT_TIMEOUT_MS}")
        if readonly:
            conn.execute("SET default_transaction_read_only = on")
    except psycopg.Error as exc:
        conn.close()
        raise Unavailable(f"the database at {url.redacted}: {_first_line(exc)}") from exc
    conn.autocommit = autocommit
    return conn


def unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database is away (retry), False when the write itself is wrong."""
    if isinstance(exc, Unavailable):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def describe(exc: BaseException) -> str:
    """One line about a driver error, for logs (never the URL: drivers do not include it)."""
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
