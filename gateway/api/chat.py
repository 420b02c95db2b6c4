"""`POST /v1/chat/completions` and `POST /v1/completions`: the caller authenticated (from the
headers, before the body), the body read (`gateway.api.body`), the chat service called, its
outcome sent as JSON or as Server-Sent Events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.api.body import BodyRoute
from gateway.chat.service import Outcome
from gateway.chat.stream import StreamLease
from gateway.deps import BodyCaller, Service
from gateway.protocol.openai import ChatCompletionRequest, CompletionRequest, ErrorResponse

router = APIRouter(route_class=BodyRoute)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 429, 502, 503, 504)
}
"""The error answers documented in the OpenAPI schema."""


class EventStream(StreamingResponse):
    """A stream that closes its lease however the response ends: a client that leaves before the
    first byte never starts the stream, so the stream's own cleanup never runs."""

    def __init__(self, lease: StreamLease, headers: dict[str, str]) -> None:
        super().__init__(lease.events(), media_type="text/event-stream", headers=headers)
        self._lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._lease.close()


def respond(outcome: Outcome) -> Response:
    if outcome.stream is not None:
        headers = {**outcome.headers, "cache-control": "no-cache", "x-accel-buffering": "no"}
        return EventStream(outcome.stream, headers)
    return JSONResponse(outcome.body, headers=outcome.headers)


@router.post("/v1/chat/completions", responses=ERRORS)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, key: BodyCaller, service: Service
) -> Response:
    return respond(await service.handle("chat", body, request.headers, key))


@router.post("/v1/completions", responses=ERRORS)
async def completions(
    body: CompletionRequest, request: Request, key: BodyCaller, service: Service
) -> Response:
    return respond(await service.handle("completions", body, request.headers, key))
