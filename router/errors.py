"""The router's exceptions: one base the gateway catches, and a data error pointing at a line.

Every error a user can trigger says what was wrong, the value received and what is accepted, so that
a bad JSONL line or a mismatched artifact can be fixed without reading the code.
"""

from __future__ import annotations

from pathlib import Path


class RouterError(Exception):
    """Anything the router refuses: a missing encoder, a bad artifact, bad data."""


class DataError(RouterError):
    """Bad input data, located at a file and (when it applies) a 1-based line number.

    The message reads ``FILE:LINE: what was wrong, what is expected``, the form editors jump to.
    """

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")
