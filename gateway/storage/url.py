"""Which database the gateway keeps its state in, as a URL: `sqlite:///path` or `postgresql://...`.

This module owns the URL's parsing and its two faces: the form a driver connects with, and the
form that may be printed (password masked). `sqlite:///relative/path` is relative to the current
directory, `sqlite:////abs/path` (or `sqlite:///` + an absolute path) absolute, as in SQLAlchemy.
`postgres://` is accepted as `postgresql://`, as libpq does. Anything else is refused with the
schemes that are accepted, at start, before anything listens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from gateway.storage.errors import DatabaseURLError

Dialect = Literal["sqlite", "postgres"]

DB_FILENAME = "requests.db"
"""The embedded database's file name in the log directory (the request log's historical name)."""


@dataclass(frozen=True)
class DatabaseURL:
    dialect: Dialect
    url: str
    """As given (with its password): what the driver connects with. Never log it: use `redacted`."""

    @classmethod
    def parse(cls, text: str) -> DatabaseURL:
        value = text.strip()
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        if scheme == "sqlite":
            if not value.lower().startswith("sqlite:///") or len(value) <= len("sqlite:///"):
                raise DatabaseURLError(
                    f"request-log URL {_mask(value)!r}: a SQLite URL is sqlite:///relative/path "
                    "or sqlite:////absolute/path"
                )
            return cls("sqlite", value)
        if scheme in ("postgresql", "postgres"):
            if scheme == "postgres":
                value = "postgresql" + value[len("postgres") :]
            if not urlsplit(value).hostname and "host=" not in value:
                raise DatabaseURLError(
                    f"request-log URL {_mask(value)!r}: a Postgres URL names a host, "
                    "postgresql://user:password@host:5432/database"
                )
            return cls("postgres", value)
        raise DatabaseURLError(
            f"request-log URL {_mask(value)!r}: accepted are sqlite:///path (the embedded "
            "default) and postgresql://user:password@host:5432/database"
        )

    @classmethod
    def sqlite(cls, path: Path) -> DatabaseURL:
        return cls("sqlite", f"sqlite:///{path}")

    @property
    def path(self) -> Path:
        """The SQLite file (only for `sqlite:` URLs)."""
        if self.dialect != "sqlite":
            raise DatabaseURLError(f"{self.redacted} is not a SQLite URL")
        return Path(unquote(self.url[len("sqlite:///") :])).expanduser()

    @property
    def redacted(self) -> str:
        """The URL with its password masked: safe for logs and error messages."""
        return _mask(self.url)

    def __str__(self) -> str:
        return self.redacted


def _mask(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def resolve(url: str | None, config_url: str | None, log_dir: Path) -> DatabaseURL:
    """The database to use: `TIERGATE_REQUEST_LOG_URL` (settings) first, then the config file's
    `request_log_url`, then the SQLite file in the log directory (today's default, unchanged)."""
    for candidate in (url, config_url):
        if candidate:
            return DatabaseURL.parse(candidate)
    return DatabaseURL.sqlite(log_dir / DB_FILENAME)
