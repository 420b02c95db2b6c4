"""The tests' PostgreSQL: the benchmarks' server (bench/postgres.py), without fsync."""

from __future__ import annotations

from pathlib import Path

from bench.postgres import PostgresServer, binaries, count

__all__ = ["PostgresServer", "binaries", "count", "fast_server"]


def fast_server(bindir: Path) -> PostgresServer:
    return PostgresServer(bindir, durable=False)
