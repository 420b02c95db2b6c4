"""`POST /v1/embeddings`: the body validated, the caller authenticated, the embeddings service
called (`gateway.chat.embeddings`), its JSON answer sent with the request id and cost headers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.api.chat import ERRORS, respond
from gateway.deps import Embeddings, Keys
from gateway.protocol.openai import EmbeddingsRequest

router = APIRouter()


@router.post("/v1/embeddings", responses=ERRORS)
async def embeddings(
    body: EmbeddingsRequest, request: Request, keys: Keys, service: Embeddings
) -> Response:
    key = keys.authenticate(request.headers)  # after the body: see gateway.deps
    return respond(await service.handle(body, request.headers, key))
