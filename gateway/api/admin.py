"""Admin routes: `GET /admin/usage/{key_id}` (what one key has used in its current windows) and
`POST /admin/router/reload` (swap in retrained artifacts everywhere, `gateway.chat.reload`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.api.chat import ERRORS
from gateway.deps import Admin, Keys, QuotaDep, ReloaderDep
from gateway.protocol.errors import GatewayError

router = APIRouter()


@router.get("/admin/usage/{key_id}", responses=ERRORS)
async def usage(key_id: str, _admin: Admin, keys: Keys, quota: QuotaDep) -> dict[str, Any]:
    """What one key has used in its current rate and budget windows. Needs an admin key."""
    key = keys.find(key_id)
    if key is None:
        raise GatewayError(404, f"no key with id {key_id!r}", code="key_not_found", param="key_id")
    return {"id": key.id, **await quota.usage(key)}


@router.post("/admin/router/reload", responses=ERRORS)
async def reload_router(_admin: Admin, reloader: ReloaderDep) -> dict[str, Any]:
    """Re-read the router's (and the verifiers') artifacts and swap them in, in every worker
    process and replica, without dropping requests. Needs an admin key."""
    return await reloader.reload_everywhere()
