"""`GET /admin/usage/{key_id}`: what one key has used in its current rate and budget windows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.api.chat import ERRORS
from gateway.deps import Admin, Keys, QuotaDep
from gateway.protocol.errors import GatewayError

router = APIRouter()


@router.get("/admin/usage/{key_id}", responses=ERRORS)
async def usage(key_id: str, _admin: Admin, keys: Keys, quota: QuotaDep) -> dict[str, Any]:
    """What one key has used in its current rate and budget windows. Needs an admin key."""
    key = keys.find(key_id)
    if key is None:
        raise GatewayError(404, f"no key with id {key_id!r}", code="key_not_found", param="key_id")
    return {"id": key.id, **await quota.usage(key)}
