"""`GET /health` (the process serves HTTP), `GET /ready` (this process can serve: the load
balancer's question) and `GET /status` (what this process can reach upstream, and its breakers)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.deps import Keys, ReadinessDep, StatusDep

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and serving HTTP; says nothing about upstreams."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(readiness: ReadinessDep) -> JSONResponse:
    """200 when this process can serve (config and router loaded, request log writable, not
    draining), else 503 with the reasons; never asks an upstream (`gateway.lifecycle`)."""
    ok, report = readiness.check()
    return JSONResponse(report, status_code=200 if ok else 503)


@router.get("/status")
async def status(request: Request, keys: Keys, upstreams: StatusDep) -> JSONResponse:
    """Upstream reachability and circuits per tier: each deployment's with an admin key, counts
    without one. Probes are cached a few seconds (`gateway.upstream.probes`). Always 200: the
    body's `status` says `ok` or `degraded`."""
    _, report = await upstreams.check(detailed=keys.is_admin(request.headers))
    return JSONResponse(report)
