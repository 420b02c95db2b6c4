"""HTTP routes. Each one fetches a service built at start-up from `request.app.state`, calls it,
and turns the result into JSON or a stream; no routing or accounting logic lives here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.access.keys import KeyRing
from gateway.chat.service import ChatService, Outcome
from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    ErrorResponse,
    ModelList,
)
from gateway.upstream.probes import readiness

router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 429, 502, 503, 504)
}


def _service(request: Request) -> ChatService:
    service: ChatService = request.app.state.service
    return service


def _keys(request: Request) -> KeyRing:
    keys: KeyRing = request.app.state.keys
    return keys


class _EventStream(StreamingResponse):
    """A stream that, however the response ends, lets the service account for it: a client
    that leaves before the first byte never starts the stream, so its own cleanup never runs."""

    def __init__(self, outcome: Outcome, headers: dict[str, str]) -> None:
        assert outcome.stream is not None
        super().__init__(outcome.stream, media_type="text/event-stream", headers=headers)
        self._abandon = outcome.abandon

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._abandon is not None:
                await self._abandon()


def _respond(outcome: Outcome) -> Response:
    if outcome.stream is not None:
        headers = {**outcome.headers, "cache-control": "no-cache", "x-accel-buffering": "no"}
        return _EventStream(outcome, headers)
    return JSONResponse(outcome.body, headers=outcome.headers)


@router.post("/v1/chat/completions", responses=_ERRORS)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    key = _keys(request).authenticate(request.headers)
    return _respond(await _service(request).handle("chat", body, request.headers, key))


@router.post("/v1/completions", responses=_ERRORS)
async def completions(body: CompletionRequest, request: Request) -> Response:
    key = _keys(request).authenticate(request.headers)
    return _respond(await _service(request).handle("completions", body, request.headers, key))


@router.get("/v1/models", response_model=ModelList, responses={401: {"model": ErrorResponse}})
async def models(request: Request) -> ModelList:
    _keys(request).authenticate(request.headers)  # the names are not for strangers
    catalogue: ModelList = request.app.state.catalogue()
    return catalogue


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and serving HTTP; says nothing about upstreams (see /ready)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    circuits = state.service.resilience.circuits()
    ok, report = await readiness(state.http, state.config, state.balancer.targets, circuits)
    return JSONResponse(report, status_code=200 if ok else 503)


@router.get("/admin/usage/{key_id}", responses=_ERRORS)
async def usage(key_id: str, request: Request) -> dict[str, Any]:
    """What one key has used in its current rate and budget windows. Needs an admin key."""
    keys = _keys(request)
    keys.authenticate_admin(request.headers)
    key = keys.find(key_id)
    if key is None:
        raise GatewayError(404, f"no key with id {key_id!r}", code="key_not_found", param="key_id")
    return {"id": key.id, **await _service(request).quota.usage(key)}
