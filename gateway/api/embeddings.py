"""`POST /v1/embeddings`: the caller authenticated (from the headers, before the body), the body
read as chat's is (`gateway.api.body`: structure, size, lone surrogates), the embeddings service
called (`gateway.chat.embeddings`), its JSON answer sent with the request id and cost headers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.api.body import BodyRoute
from gateway.api.chat import ERRORS, respond
from gateway.deps import BodyCaller, Embeddings
from gateway.protocol.openai import EmbeddingsRequest

router = APIRouter(route_class=BodyRoute)


@router.post("/v1/embeddings", responses=ERRORS)
async def embeddings(
    body: EmbeddingsRequest, request: Request, key: BodyCaller, service: Embeddings
) -> Response:
    return respond(await service.handle(body, request.headers, key))
