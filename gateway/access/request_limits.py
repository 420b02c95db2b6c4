"""Request size limits: body bytes before parsing, messages and tokens after.

`BodySizeLimit` checks `Content-Length`, then counts the bytes of the body as they arrive (a
chunked body has no length), so an oversize request gets a 413 in OpenAI's envelope and the gateway
never holds more than the limit in memory. `check_request` refuses too many messages or too large a
`max_tokens` with a 400 naming the limit; `completion_budget` reads what a request may generate.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.protocol.errors import GatewayError, envelope
from gateway.protocol.openai import ChatCompletionRequest, RoutedRequest


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
        body = orjson.dumps(
            envelope(
                413,
                f"request body is larger than the limit of {self.max_bytes} bytes",
                code="request_too_large",
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


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
        raise GatewayError(
            400,
            f"{param} has {count} entries; this gateway accepts at most {max_messages}",
            code="too_many_messages",
            param=param,
        )
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


def completion_budget(request: RoutedRequest, default: int) -> int:
    """The most completion tokens this request may produce, or `default` if it does not say."""
    limit = request.max_tokens
    if isinstance(request, ChatCompletionRequest) and request.max_completion_tokens is not None:
        limit = request.max_completion_tokens
    n = request.n or 1
    return (limit or default) * n
