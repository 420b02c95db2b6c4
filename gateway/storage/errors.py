"""What the storage layer raises; every message names the database with its password masked."""

from __future__ import annotations


class StorageError(RuntimeError):
    """The database cannot be used at all (unreachable at start, refused a migration)."""


class Unavailable(StorageError):
    """The database is away for now (down, restarting, unreachable, too slow): try again later."""


class DatabaseURLError(StorageError, ValueError):
    """A URL the storage layer cannot use; the message names the value and what is accepted."""
