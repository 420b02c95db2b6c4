"""Everything the gateway keeps, in one database: SQLite (embedded, the default) or Postgres.

`TIERGATE_REQUEST_LOG_URL` (or the config's `request_log_url`) picks it: `sqlite:///path` or
`postgresql://user:password@host:5432/db`; without either, the SQLite file `requests.db` in the log
directory, as before. The schema is versioned (`migrate`: numbered SQL files in `migrations/`, run
at start and by `tiergate db migrate`). `Database` is the handle the running gateway shares; the
request log writes through `Database.request_writer()`, the rest through its async methods.
"""

from gateway.storage.database import Database
from gateway.storage.errors import DatabaseURLError, StorageError, Unavailable
from gateway.storage.migrate import migrate, migrations
from gateway.storage.records import Feedback, Outcome, StoredResponse
from gateway.storage.requests import find_requests, open_request_writer, read_requests
from gateway.storage.url import DB_FILENAME, DatabaseURL, resolve

__all__ = [
    "DB_FILENAME",
    "Database",
    "DatabaseURL",
    "DatabaseURLError",
    "Feedback",
    "Outcome",
    "StorageError",
    "StoredResponse",
    "Unavailable",
    "find_requests",
    "migrate",
    "migrations",
    "open_request_writer",
    "read_requests",
    "resolve",
]
