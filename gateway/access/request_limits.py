"""Request size limits: body bytes before parsing, structure before validation, messages and
tokens after.

`BodySizeLimit` checks `Content-Length`, then counts the bytes of the body as they arrive (a
chunked body has no length), so an oversize request gets a 413 in OpenAI's envelope and the gateway
never holds more than the limit in memory. `check_structure` bounds, on the raw bytes and at C
speed, how deep a body nests and how many JSON objects and arrays it holds; `check_counts` bounds
messages and prompts on the parsed JSON, before validation (`gateway.api.body`). `check_request`
refuses too many messages or too large a `max_tokens` with a 400 naming the limit;
`completion_budget` reads what a request may generate.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.protocol.errors import GatewayError, send_error
from gateway.protocol.openai import ChatCompletionRequest, RoutedRequest

MAX_DEPTH = 512
"""How deep a body may nest. Valid JSON past orjson's 254 levels is relayed (the stdlib encoder
takes it, and litellm does); 512 keeps every parser and encoder on the way (recursion limits
near 1,000 frames) well inside its limits."""
CONTAINERS_PER_MESSAGE = 64
"""JSON objects and arrays a body may hold per message it may hold (`limits.max_messages`): a
message with content parts and tool calls is a handful, tool schemas a few hundred per request;
65,536 by default, parsed in about 10 ms. A million empty messages is refused unparsed."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
"""A JSON string literal, escapes included: brackets inside strings are text, not structure."""
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = np.frombuffer(b"[{", dtype=np.uint8)


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        # Read the body here, bounded, then replay it: an oversize body never reaches the app.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        message = f"request body is larger than the limit of {self.max_bytes} bytes"
        await send_error(send, GatewayError(413, message, code="request_too_large"))


def check_request(request: RoutedRequest, *, max_messages: int, max_tokens: int) -> None:
    """400 naming the limit when a request has too many messages or asks for too many tokens.

    Checked after validation and before any routing or upstream work, so an oversized request
    costs the gateway nothing.
    """
    count = (
        len(request.messages)
        if isinstance(request, ChatCompletionRequest)
        else (len(request.prompt) if isinstance(request.prompt, list) else 1)
    )
    if count > max_messages:
        param = "messages" if isinstance(request, ChatCompletionRequest) else "prompt"
        raise too_many(param, count, max_messages)
    asked = [("max_tokens", request.max_tokens)]
    if isinstance(request, ChatCompletionRequest):
        asked.append(("max_completion_tokens", request.max_completion_tokens))
    for name, value in asked:
        if value is not None and value > max_tokens:
            raise GatewayError(
                400,
                f"{name} is {value}; this gateway accepts at most {max_tokens}",
                code="max_tokens_too_large",
                param=name,
            )


def completion_cap(request: RoutedRequest, default: int) -> int:
    """The most completion tokens one of this request's choices may produce: what it asks
    (`max_completion_tokens`, else `max_tokens`), or `default` if it does not say."""
    limit = request.max_tokens
    if isinstance(request, ChatCompletionRequest) and request.max_completion_tokens is not None:
        limit = request.max_completion_tokens
    return limit or default


def completion_budget(request: RoutedRequest, default: int) -> int:
    """The most completion tokens this request may produce, all its choices together."""
    return completion_cap(request, default) * (request.n or 1)


def check_structure(body: bytes, *, max_messages: int) -> None:
    """400 when `body` nests deeper than `MAX_DEPTH` or holds more JSON objects and arrays than
    `CONTAINERS_PER_MESSAGE * max_messages`. Runs on the raw bytes before any parsing, in
    milliseconds for a body at the size limit; malformed JSON is left to the parser to name."""
    opens = body.count(b"{") + body.count(b"[")
    if opens <= MAX_DEPTH:  # neither limit can be passed: most requests stop here
        return
    skeleton = np.frombuffer(_STRING.sub(b"", body).translate(None, _NOT_BRACKET), np.uint8)
    opening = np.isin(skeleton, _OPEN)
    containers = int(opening.sum())
    most = CONTAINERS_PER_MESSAGE * max_messages
    if containers > most:
        raise GatewayError(
            400,
            f"request body holds {containers} JSON objects and arrays; this gateway accepts at "
            f"most {most} ({CONTAINERS_PER_MESSAGE} per message of its limit of {max_messages})",
            code="too_many_json_values",
        )
    depth = int(np.cumsum(np.where(opening, 1, -1), dtype=np.int64).max(initial=0))
    if depth > MAX_DEPTH:
        raise GatewayError(
            400,
            f"request body nests {depth} levels deep; this gateway accepts at most {MAX_DEPTH}",
            code="too_deeply_nested",
        )


def check_counts(data: Any, *, max_messages: int) -> None:
    """The message (or prompt) count of a parsed body, checked before validation: a body of
    many messages is refused before pydantic builds a model of each. Same 400 as
    `check_request`."""
    if not isinstance(data, dict):
        return
    for param in ("messages", "prompt"):
        entries = data.get(param)
        if isinstance(entries, list) and len(entries) > max_messages:
            raise too_many(param, len(entries), max_messages)


def too_many(param: str, count: int, max_messages: int) -> GatewayError:
    return GatewayError(
        400,
        f"{param} has {count} entries; this gateway accepts at most {max_messages}",
        code="too_many_messages",
        param=param,
    )
