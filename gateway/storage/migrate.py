"""The versioned schema: numbered SQL migrations, applied once, in order, by whoever starts first.

Migrations are the files `gateway/storage/migrations/NNNN_name.sql`, one SQL text for both
dialects with a few type placeholders (`{real}`, `{bool}`, `{json}`, `{bytes}`, `{id}`, see
`TYPES`), statements separated by `;` at the end of a line. Each applied migration is a row of
`schema_migrations` (version, name, checksum of the rendered SQL, applied_at). Every pending one
is applied in a single transaction: all or none.

Several replicas may start at once against one Postgres: a transaction-scoped advisory lock
serialises them, and whoever comes second finds the work done. SQLite gets the same from
`BEGIN IMMEDIATE` (one writer at a time). A SQLite request log written before migrations existed
(a `requests` table, no `schema_migrations`) is adopted: the columns it lacks are added, its rows
stay. A database that is ahead of this code (a newer replica migrated during a rolling update) is
left as it is: migrations only add, so older code keeps working.

To add a table or a column: a new file with the next number (never edit an applied one; a
changed checksum is logged as a warning). A new `RequestRecord` field needs its
`ALTER TABLE requests ADD COLUMN ...` migration (tests/gateway/storage/test_migrations.py says so).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from gateway.storage.connect import StorageError, connect_postgres, connect_sqlite, describe
from gateway.storage.url import DatabaseURL, Dialect

logger = logging.getLogger(__name__)

TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        "real": "REAL",
        "bool": "INTEGER",
        "json": "TEXT",
        "bytes": "BLOB",
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
    },
    "postgres": {
        "real": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "json": "JSONB",
        "bytes": "BYTEA",
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
}
_PLACEHOLDER = re.compile(r"\{(real|bool|json|bytes|id)\}")
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*(?:--[^\n]*)?$", re.M)
ADVISORY_LOCK = 0x7469_6572_6761_7465  # "tiergate": one lock id for every replica's migrations
_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at {real} NOT NULL
)"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    source: str = field(repr=False)

    def render(self, dialect: Dialect) -> str:
        return _PLACEHOLDER.sub(lambda m: TYPES[dialect][m.group(1)], self.source)

    def statements(self, dialect: Dialect) -> list[str]:
        """The statements to execute, comments and blank lines dropped."""
        body = "\n".join(
            line for line in self.render(dialect).splitlines() if not line.lstrip().startswith("--")
        )
        return [s.strip() for s in _STATEMENT_END.split(body) if s.strip()]

    def checksum(self, dialect: Dialect) -> str:
        return hashlib.sha256(self.render(dialect).encode("utf-8")).hexdigest()[:16]


def migrations() -> list[Migration]:
    """Every migration shipped with the gateway, in order; numbering must run 1, 2, 3 ..."""
    found = []
    for entry in resources.files("gateway.storage").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StorageError(f"migrations must be numbered 1, 2, 3 ... with no gap; found {versions}")
    return found


def migrate(url: DatabaseURL) -> list[Migration]:
    """Bring the database up to date; returns the migrations applied now (none if it already was).

    Raises `StorageError` (`Unavailable` for a database that cannot be reached) with the URL's
    password masked.
    """
    pending = migrations()
    if url.dialect == "sqlite":
        return _migrate_sqlite(url, pending)
    return _migrate_postgres(url, pending)


def applied(url: DatabaseURL) -> dict[int, str]:
    """Applied versions and names (empty for a database never migrated)."""
    if url.dialect == "sqlite":
        if not url.path.exists():
            return {}
        conn: Any = connect_sqlite(url.path, readonly=True)
        exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    else:
        conn = connect_postgres(url, autocommit=True, readonly=True)
        exists = "SELECT 1 FROM pg_tables WHERE tablename = 'schema_migrations'"
    try:
        if conn.execute(exists).fetchone() is None:
            return {}
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        return {int(row[0]): str(row[1]) for row in rows.fetchall()}
    finally:
        conn.close()


def _migrate_sqlite(url: DatabaseURL, pending: list[Migration]) -> list[Migration]:
    try:
        conn = connect_sqlite(url.path)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"cannot open the request log {url.path}: {describe(exc)}") from exc
    conn.isolation_level = None  # explicit transactions below
    try:
        conn.execute("BEGIN IMMEDIATE")  # one migrator at a time; the next one waits here
        try:
            done = _prepare(conn, "sqlite", "?")
            if not done:
                _adopt_legacy_sqlite(conn)
            now_applied = _apply(conn, "sqlite", "?", pending, done)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StorageError(f"migrating the request log {url.path}: {describe(exc)}") from exc
    finally:
        conn.close()
    return now_applied


def _migrate_postgres(url: DatabaseURL, pending: list[Migration]) -> list[Migration]:
    import psycopg

    conn = connect_postgres(url, autocommit=True)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
            done = _prepare(conn, "postgres", "%s")
            return _apply(conn, "postgres", "%s", pending, done)
    except psycopg.Error as exc:
        raise StorageError(f"migrating the database at {url.redacted}: {describe(exc)}") from exc
    finally:
        conn.close()


def _prepare(conn: Any, dialect: Dialect, param: str) -> dict[int, str]:
    """Create `schema_migrations` if needed; the applied versions and their checksums."""
    conn.execute(_PLACEHOLDER.sub(lambda m: TYPES[dialect][m.group(1)], _TABLE))
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {int(row[0]): str(row[1]) for row in rows}


def _apply(
    conn: Any, dialect: Dialect, param: str, pending: list[Migration], done: dict[int, str]
) -> list[Migration]:
    known = {m.version for m in pending}
    ahead = sorted(v for v in done if v not in known)
    if ahead:
        logger.info("database schema has migrations this gateway does not know: %s", ahead)
    applied_now = []
    for migration in pending:
        checksum = migration.checksum(dialect)
        if migration.version in done:
            if done[migration.version] != checksum:
                logger.warning(
                    "migration %04d_%s was changed after it was applied; the database keeps the "
                    "applied version (write a new migration instead)",
                    migration.version,
                    migration.name,
                )
            continue
        for statement in migration.statements(dialect):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
            f"VALUES ({param}, {param}, {param}, {param})",
            (migration.version, migration.name, checksum, time.time()),
        )
        applied_now.append(migration)
        logger.info("database: applied migration %04d_%s", migration.version, migration.name)
    return applied_now


def _adopt_legacy_sqlite(conn: sqlite3.Connection) -> None:
    """A log from before migrations: add the columns of migration 1's `requests` it lacks."""
    have = [row[1] for row in conn.execute("PRAGMA table_info(requests)")]
    if not have:
        return
    reference = sqlite3.connect(":memory:")
    try:
        for statement in migrations()[0].statements("sqlite"):
            reference.execute(statement)
        wanted = [(row[1], row[2]) for row in reference.execute("PRAGMA table_info(requests)")]
    finally:
        reference.close()
    for name, sql_type in wanted:
        if name not in have:
            conn.execute(f"ALTER TABLE requests ADD COLUMN {name} {sql_type}")
    logger.info(
        "request log: adopted a log written before schema migrations (%d rows kept)",
        conn.execute("SELECT count(*) FROM requests").fetchone()[0],
    )
