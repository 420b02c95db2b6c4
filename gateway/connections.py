"""HTTP connections as the gateway accepts them: uvicorn's httptools protocol, with the limits a
production proxy would put in front of it.

uvicorn (0.54, httptools) waits forever for a request's headers and body and takes headers of any
size: an idle connection, headers dribbled a byte at a time, a body that never ends or is shorter
than its Content-Length each hold a connection (and a file descriptor) for as long as the client
likes, and a few hundred of them starve real requests. `GuardedProtocol` adds, per connection:

- the request head (request line and headers) must arrive within `header_timeout_s` of the
  connection opening (or of the request's first byte on a kept-alive connection): else 408, or a
  silent close when nothing at all was sent;
- the body within `body_timeout_s` of the end of the head, however it trickles: else 408;
- a head over `max_header_bytes` is answered 431;
- past `max_connections` open connections a new one is answered 503 and closed at once, with a
  warning in the log (at most one every ten seconds, with the count).

The keep-alive timeout between requests is uvicorn's own (`timeout_keep_alive`). Error answers are
OpenAI's envelope, written straight to the socket (no request reached the app), then the
connection is closed. The checks cost a timer per phase of a request and a length per read, so
throughput is unchanged (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.protocol.errors import envelope

log = logging.getLogger(__name__)

_WARN_EVERY_S = 10.0


@dataclass
class ConnectionGuard:
    """The limits, shared by every connection of one server, and what they refused so far."""

    header_timeout_s: float
    body_timeout_s: float
    max_header_bytes: int
    max_connections: int
    refused: dict[str, int] = field(default_factory=dict)
    """Connections closed by each limit (`header_timeout`, `body_timeout`, `header_too_large`,
    `too_many_connections`), for the log and the benchmark."""
    _last_warned: dict[str, float] = field(default_factory=dict)
    _unwarned: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str, message: str, level: int = logging.INFO) -> None:
        """Count one refusal; say so in the log at most once every ten seconds per reason."""
        self.refused[reason] = self.refused.get(reason, 0) + 1
        self._unwarned[reason] = self._unwarned.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._last_warned.get(reason, -_WARN_EVERY_S) >= _WARN_EVERY_S:
            log.log(level, "%s (%d since the last such line)", message, self._unwarned[reason])
            self._unwarned[reason] = 0
            self._last_warned[reason] = now

    def protocol(self, **kwargs: Any) -> GuardedProtocol:
        """uvicorn's protocol factory (`Config(http=guard.protocol)`)."""
        return GuardedProtocol(guard=self, **kwargs)


def _answer(status: int, message: str, code: str) -> bytes:
    body = orjson.dumps(envelope(status, message, code=code))
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head and body timeouts, a head size limit and a
    connection cap (see the module's docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        guard: ConnectionGuard,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._guard = guard
        self._timer: asyncio.TimerHandle | None = None
        self._in_head = True
        self._head_bytes = 0
        self._closed_by_us = False

    # --- connection -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self._guard
        if len(self.connections) > guard.max_connections:
            guard.count(
                "too_many_connections",
                f"refused new connections: {guard.max_connections} are open, the limit "
                "(TIERGATE_MAX_CONNECTIONS)",
                logging.WARNING,
            )
            self._close_with(
                503,
                "the gateway has too many open connections; retry shortly",
                "too_many_connections",
            )
            return
        self._arm(guard.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._closed_by_us:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        most = self._guard.max_header_bytes
        if self._in_head and self._head_bytes > most and not self.transport.is_closing():
            self._guard.count(
                "header_too_large",
                f"refused requests whose headers passed {most} bytes (TIERGATE_MAX_HEADER_BYTES)",
            )
            self._close_with(
                431,
                f"request headers are larger than the limit of {most} bytes",
                "request_header_fields_too_large",
            )

    # --- parser callbacks -----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        if self._timer is None:  # a kept-alive connection's next request: its head starts now
            self._arm(self._guard.header_timeout_s, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._arm(self._guard.body_timeout_s, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True  # what arrives next belongs to the next request's head
        super().on_message_complete()

    # --- timers ---------------------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
            # Nothing of a request arrived: an idle connection, closed without a word.
            self._guard.count(
                "idle",
                f"closed connections idle for {self._guard.header_timeout_s:g}s before a request "
                "(TIERGATE_HEADER_TIMEOUT_S)",
                logging.DEBUG,
            )
            self._closed_by_us = True
            self.transport.close()
            return
        self._guard.count(
            "header_timeout",
            f"closed connections whose request headers took over "
            f"{self._guard.header_timeout_s:g}s (TIERGATE_HEADER_TIMEOUT_S)",
        )
        self._close_with(
            408,
            f"request headers did not arrive within {self._guard.header_timeout_s:g}s",
            "request_timeout",
        )

    def _body_timed_out(self) -> None:
        self._timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body:
            return
        self._guard.count(
            "body_timeout",
            f"closed connections whose request body took over {self._guard.body_timeout_s:g}s "
            "(TIERGATE_BODY_TIMEOUT_S)",
        )
        started = cycle.response_started
        # The app, if it is waiting for the rest of the body, hears that the client is gone.
        cycle.disconnected = True
        cycle.message_event.set()
        if started:
            self._closed_by_us = True
            self.transport.close()
            return
        self._close_with(
            408,
            f"the request body did not arrive within {self._guard.body_timeout_s:g}s",
            "request_timeout",
        )

    def _close_with(self, status: int, message: str, code: str) -> None:
        self._closed_by_us = True
        self._disarm()
        self.transport.write(_answer(status, message, code))
        self.transport.close()
