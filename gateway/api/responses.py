"""`POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`: the caller authenticated (from the
headers, before the body), the body read as chat's is (`gateway.api.body`: structure, size, lone
surrogates), the Responses service called (`gateway.chat.responses`), its outcome sent as a
`response` object or as the typed events of the Responses API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gateway.api.body import BodyRoute
from gateway.api.chat import ERRORS, respond
from gateway.deps import BodyCaller, Caller, Responses
from gateway.protocol.openai import JSON
from gateway.protocol.responses import ResponsesRequest

router = APIRouter(route_class=BodyRoute)


@router.post("/v1/responses", responses=ERRORS)
async def create_response(
    body: ResponsesRequest, request: Request, key: BodyCaller, service: Responses
) -> Response:
    return respond(await service.handle(body, request.headers, key))


@router.get("/v1/responses/{response_id}", responses=ERRORS)
async def get_response(response_id: str, caller: Caller, service: Responses) -> JSON:
    return await service.store.get(response_id, caller.id if caller is not None else None)


@router.delete("/v1/responses/{response_id}", responses=ERRORS)
async def delete_response(response_id: str, caller: Caller, service: Responses) -> Response:
    await service.store.delete(response_id, caller.id if caller is not None else None)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})
