"""HTTP routes. Each one fetches a service built at start-up from `request.app.state`, calls it,
and turns the result into JSON or a stream; no routing or accounting logic lives here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gateway.health import readiness
from gateway.protocol import ChatCompletionRequest, CompletionRequest, ErrorResponse, ModelList
from gateway.service import ChatService, Outcome

router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 413, 429, 502, 503, 504)
}


def _service(request: Request) -> ChatService:
    service: ChatService = request.app.state.service
    return service


def _respond(outcome: Outcome) -> Response:
    if outcome.stream is not None:
        headers = {**outcome.headers, "cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(outcome.stream, media_type="text/event-stream", headers=headers)
    return JSONResponse(outcome.body, headers=outcome.headers)


@router.post("/v1/chat/completions", responses=_ERRORS)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    return _respond(await _service(request).handle("chat", body, request.headers))


@router.post("/v1/completions", responses=_ERRORS)
async def completions(body: CompletionRequest, request: Request) -> Response:
    return _respond(await _service(request).handle("completions", body, request.headers))


@router.get("/v1/models", response_model=ModelList)
async def models(request: Request) -> ModelList:
    catalogue: ModelList = request.app.state.catalogue()
    return catalogue


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and serving HTTP; says nothing about upstreams (see /ready)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    ok, report = await readiness(state.http, state.config, state.balancer.targets)
    return JSONResponse(report, status_code=200 if ok else 503)
