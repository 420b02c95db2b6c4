"""`GET /health` (the process serves HTTP) and `GET /ready` (every tier can reach a deployment)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.deps import ReadinessDep

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and serving HTTP; says nothing about upstreams (see /ready)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(readiness: ReadinessDep) -> JSONResponse:
    ok, report = await readiness.check()
    return JSONResponse(report, status_code=200 if ok else 503)
