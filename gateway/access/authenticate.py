"""The caller's key, checked from the headers before any byte of the body is read.

A request body is read, parsed and validated before a route runs; a client without a key must
not get to make the gateway do any of that (a body of a million messages took seconds of the
event loop). `HeaderAuthentication` runs first, for every request that may carry a body (POST,
PUT, PATCH): a missing or unknown key is answered 401 at once, the body left unread (and the
connection closed after the answer); a valid key goes in the request's state, where the route
finds it (`gateway.deps.BodyCaller`). Requests without a body authenticate in their route, as
they always have (`gateway.deps.Caller`, `Admin`).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.access.keys import KeyRing
from gateway.protocol.errors import GatewayError, send_error

STATE_KEY = "tiergate_api_key"
"""Where the request's state holds the caller's `ApiKey` once the headers said who it is."""
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class HeaderAuthentication:
    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _WITH_BODY and not self.keys.open:
            try:
                key = self.keys.authenticate(Headers(scope=scope))
            except GatewayError as exc:
                await send_error(send, exc, close=True)
                return
            scope.setdefault("state", {})[STATE_KEY] = key
        await self.app(scope, receive, send)
