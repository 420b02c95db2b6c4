"""Reading a JSON request body: checked cheaply before it is parsed, parsed off the event loop
when it is big, validated into the route's model.

Routes with a body use `BodyRoute` (`APIRouter(route_class=BodyRoute)`); by the time it runs, the
caller's key was checked from the headers (`gateway.access.authenticate`) and the body's size
(`gateway.access.request_limits.BodySizeLimit`). Then, in order:

1. structure, on the raw bytes at C speed (`check_structure`: nesting depth, JSON objects and
   arrays), so a body of a million empty messages is refused in milliseconds, unparsed;
2. parsing with the standard library (integers of any size stay exact; `NaN` and `Infinity`,
   which are not JSON, are refused), in a worker thread when the body is `OFF_LOOP_BYTES` or more,
   so a big body never stalls other requests;
3. counts on the parsed JSON (`check_counts`: messages, prompts), before validation;
4. strings that no UTF-8 encoder takes (`gateway.protocol.text.lone_surrogate`): a 400 naming
   the field, before the router or an upstream meets them;
5. validation into the route's pydantic model, in a worker thread too when the body is big.
   FastAPI then gets the model itself, which it passes on without validating it again.

Errors are the envelopes the gateway always sent: a body that is not JSON is `invalid_json`, a
field that does not validate is named (`gateway.protocol.errors`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from gateway.access.request_limits import check_counts, check_structure
from gateway.config import Limits
from gateway.deps import limits_of
from gateway.protocol.errors import GatewayError
from gateway.protocol.text import lone_surrogate

OFF_LOOP_BYTES = 256 * 1024
"""Bodies at least this big are parsed and validated in a worker thread (a 256 KiB body parses
in about a millisecond; past that the event loop would notice)."""

_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
"""What a surrogate looks like in a raw body: an escape `\\udXXX`, or its CESU-8 bytes (which the
stdlib decoder lets through). A body without one is not walked."""


class ParsedRequest(Request):
    """A request whose body was read and validated already: `json()` is the route's model."""

    def __init__(self, request: Request, body: bytes, parsed: BaseModel) -> None:
        super().__init__(request.scope, request.receive)
        self._body = body
        self._json = parsed


class BodyRoute(APIRoute):
    """An API route whose JSON body is read as the module's docstring says."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        field = self.body_field
        model = field.field_info.annotation if field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return handle
        body_model: type[BaseModel] = model

        async def parse_then_handle(request: Request) -> Response:
            if not _is_json(request.headers.get("content-type")):
                return await handle(request)  # FastAPI answers it as it always has
            body = await request.body()
            parsed = await read_body(body, body_model, limits_of(request))
            return await handle(ParsedRequest(request, body, parsed))

        return parse_then_handle


async def read_body(body: bytes, model: type[BaseModel], limits: Limits) -> BaseModel:
    """`body` checked, parsed and validated into `model` (see the module's docstring)."""
    check_structure(body, max_messages=limits.max_messages)
    big = len(body) >= OFF_LOOP_BYTES
    data = await asyncio.to_thread(_parse, body) if big else _parse(body)
    check_counts(data, max_messages=limits.max_messages)
    if _MAYBE_SURROGATE.search(body) is not None:
        found = lone_surrogate(data)
        if found is not None:
            where, char = found
            raise GatewayError(
                400,
                f"{where} contains a lone surrogate ({char}): not valid Unicode",
                code="invalid_unicode",
                param=where,
            )
    try:
        if big:
            return await asyncio.to_thread(model.model_validate, data)
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=data) from None


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error]) from None
    except UnicodeDecodeError:
        raise GatewayError(
            400, "request body is not valid JSON: it is not UTF-8 text", code="invalid_json"
        ) from None


def _not_json(constant: str) -> Any:
    raise GatewayError(
        400, f"request body is not valid JSON: {constant} is not a JSON value", code="invalid_json"
    )


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")
