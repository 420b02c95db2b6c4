"""The versioned schema: numbered migrations, applied once, safe when replicas start together,
and a request table that matches `RequestRecord` on both dialects."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, get_type_hints

import psycopg
import pytest

from gateway.cli.main import main
from gateway.storage import DatabaseURL, migrate, migrations
from gateway.storage.migrate import TYPES, applied
from gateway.telemetry.record import RequestRecord

EXPECTED_TABLES = {"schema_migrations", "requests", "responses", "feedback", "outcomes"}


def columns(url: DatabaseURL, table: str) -> dict[str, str]:
    """Column name -> declared type, as the database reports it."""
    if url.dialect == "sqlite":
        conn = sqlite3.connect(url.path)
        try:
            return {row[1]: row[2] for row in conn.execute(f"PRAGMA table_info({table})")}
        finally:
            conn.close()
    with psycopg.connect(url.url) as pg:
        rows = pg.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return {str(name): str(kind).upper() for name, kind in rows}


def tables(url: DatabaseURL) -> set[str]:
    if url.dialect == "sqlite":
        conn = sqlite3.connect(url.path)
        try:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
    with psycopg.connect(url.url) as pg:
        rows = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {str(r[0]) for r in rows.fetchall()}


def test_migrations_are_numbered_without_gaps_and_render_on_both_dialects() -> None:
    found = migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    for migration in found:
        for dialect in TYPES:
            rendered = migration.render(dialect)
            assert "{" not in rendered, f"{migration.name}: unknown placeholder for {dialect}"
            assert migration.statements(dialect), migration.name


def test_fresh_database_gets_every_table_once(db_url: DatabaseURL) -> None:
    first = migrate(db_url)
    assert [m.version for m in first] == [m.version for m in migrations()]
    assert migrate(db_url) == []
    assert tables(db_url) >= EXPECTED_TABLES
    assert applied(db_url) == {m.version: m.name for m in migrations()}


_SQL_TYPE = {
    "sqlite": {bool: "INTEGER", int: "INTEGER", float: "REAL", str: "TEXT"},
    "postgres": {bool: "BOOLEAN", int: "INTEGER", float: "DOUBLE PRECISION", str: "TEXT"},
}


def _python_type(hint: Any) -> type:
    args = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
    return args[0] if args else hint  # type: ignore[no-any-return]


def test_the_requests_table_has_every_record_field_with_its_type(db_url: DatabaseURL) -> None:
    """A new `RequestRecord` field needs a migration: `gateway/storage/migrations/NNNN_....sql`
    with `ALTER TABLE requests ADD COLUMN <name> <type>;` (types: TEXT, INTEGER, {real}, {bool})."""
    migrate(db_url)
    have = columns(db_url, "requests")
    hints = get_type_hints(RequestRecord)
    wanted = {
        f.name: _SQL_TYPE[db_url.dialect][_python_type(hints[f.name])]
        for f in dataclasses.fields(RequestRecord)
    }
    missing = {name: kind for name, kind in wanted.items() if name not in have}
    assert missing == {}, f"RequestRecord fields without a migration: {missing}"
    wrong = {name: (have[name], kind) for name, kind in wanted.items() if have[name] != kind}
    assert wrong == {}


def test_replicas_starting_together_apply_each_migration_once(db_url: DatabaseURL) -> None:
    errors: list[BaseException] = []
    results: list[int] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        try:
            barrier.wait()
            results.append(len(migrate(db_url)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(results) == [0] * 7 + [len(migrations())]
    assert applied(db_url) == {m.version: m.name for m in migrations()}


def test_a_database_ahead_of_the_code_is_left_alone(
    db_url: DatabaseURL, caplog: pytest.LogCaptureFixture
) -> None:
    migrate(db_url)
    sql = "INSERT INTO schema_migrations VALUES (99, 'from_the_future', 'x', 0)"
    _execute(db_url, sql)
    with caplog.at_level(logging.INFO, logger="gateway.storage.migrate"):
        assert migrate(db_url) == []
    assert "does not know: [99]" in caplog.text


def test_an_edited_applied_migration_is_reported(
    db_url: DatabaseURL, caplog: pytest.LogCaptureFixture
) -> None:
    migrate(db_url)
    _execute(db_url, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with caplog.at_level(logging.WARNING, logger="gateway.storage.migrate"):
        migrate(db_url)
    assert "0001_requests was changed after it was applied" in caplog.text


def test_a_log_from_before_migrations_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE requests (request_id TEXT, started_at REAL, endpoint TEXT)")
    conn.execute("INSERT INTO requests VALUES ('old', 1.0, 'chat')")
    conn.commit()
    conn.close()
    migrate(DatabaseURL.sqlite(path))
    url = DatabaseURL.sqlite(path)
    assert set(columns(url, "requests")) == {f.name for f in dataclasses.fields(RequestRecord)}
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT request_id, started_at FROM requests").fetchall() == [("old", 1.0)]
    conn.close()


def test_db_migrate_and_status_commands(
    db_url: DatabaseURL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "status", "--url", db_url.url]) == 1  # pending migrations
    assert "0001_requests  pending" in capsys.readouterr().out
    assert main(["db", "migrate", "--url", db_url.url]) == 0
    out = capsys.readouterr().out
    assert "applied 0001_requests" in out and f"now at version {len(migrations())}" in out
    assert main(["db", "migrate", "--url", db_url.url]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["db", "status", "--url", db_url.url]) == 0
    assert "pending" not in capsys.readouterr().out


def test_db_migrate_says_when_the_database_cannot_be_reached(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.support.ports import free_port

    url = f"postgresql://u:hunter2@127.0.0.1:{free_port()}/db"
    assert main(["db", "migrate", "--url", url]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the database at postgresql://u:***@127.0.0.1" in err
    assert "hunter2" not in err


def _execute(url: DatabaseURL, sql: str) -> None:
    if url.dialect == "sqlite":
        conn = sqlite3.connect(url.path)
        conn.execute(sql)
        conn.commit()
        conn.close()
        return
    with psycopg.connect(url.url) as pg:
        pg.execute(sql)
