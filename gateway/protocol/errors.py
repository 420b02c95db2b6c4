"""Every error the gateway returns, in OpenAI's envelope.

`{"error": {"message", "type", "param", "code"}}` with the right status: clients written for OpenAI
already know how to read it. Handlers here turn validation errors, unknown routes, oversize bodies
and anything unexpected into that envelope; a traceback is logged, never sent.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

log = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}


MAX_RETRY_AFTER_S = 3600
"""The longest `Retry-After` the gateway sends: past an hour, a client should look again."""


def retry_after_header(seconds: float) -> str:
    """`Retry-After` as the gateway sends it: whole seconds (rounded up) in [1, 3600], whatever
    an upstream or a budget period said (an upstream's `1e+06`, an HTTP date, `-5`)."""
    if not math.isfinite(seconds):
        return str(MAX_RETRY_AFTER_S)
    return str(min(MAX_RETRY_AFTER_S, max(1, math.ceil(seconds))))


class GatewayError(Exception):
    """An error with everything the client needs to act on it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return envelope(self.status, self.message, code=self.code, param=self.param)


def envelope(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(exc: GatewayError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        exc.body(), status_code=exc.status, headers={**exc.headers, **(headers or {})}
    )


async def send_error(send: Send, exc: GatewayError, *, close: bool = False) -> None:
    """Answer `exc` straight over ASGI, from middleware that runs before the app's exception
    handlers (and before the body is read). `close`: ask the server to close the connection,
    for an answer sent while the client may still be sending a body nobody will read."""
    body = orjson.dumps(exc.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _describe_validation(exc: RequestValidationError) -> tuple[str, str | None, str]:
    """One readable sentence for the first problem, the offending field, and an error code."""
    errors = exc.errors()
    if not errors:
        return "invalid request body", None, "invalid_request"
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        detail = ctx.get("error", first.get("msg", ""))
        return f"request body is not valid JSON: {detail}", None, "invalid_json"
    field = ".".join(loc) or None
    got = first.get("input")
    got_text = repr(got)
    if len(got_text) > 80:
        got_text = got_text[:77] + "..."
    where = f"field '{field}'" if field else "request body"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    if first.get("type") == "missing":
        message = f"{where} is required{more}"
    else:
        message = f"{where}: {first.get('msg')}; got {got_text}{more}"
    return message, field, "invalid_request"


def _wrong_content_type(
    request: Request, exc: RequestValidationError
) -> tuple[str, str | None, str] | None:
    """A body sent without a JSON content type is never parsed, so validation only says "not a
    dictionary": name the header instead, which is what the client must fix."""
    ctype = request.headers.get("content-type", "")
    media = ctype.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return None
    errors = exc.errors()
    if not errors or tuple(errors[0].get("loc", ())) != ("body",):
        return None
    got = f"'Content-Type: {ctype}'" if ctype else "no Content-Type"
    message = f"the request body must be JSON sent with 'Content-Type: application/json'; got {got}"
    return message, None, "invalid_content_type"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param, code = _wrong_content_type(request, exc) or _describe_validation(exc)
        return JSONResponse(envelope(400, message, param=param, code=code), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return JSONResponse(
            envelope(exc.status_code, message, code=str(exc.status_code)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            envelope(500, "internal error in the gateway; see its log", code="internal_error"),
            status_code=500,
        )
