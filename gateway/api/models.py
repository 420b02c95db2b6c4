"""`GET /v1/models` and `GET /v1/models/{id}`: every name a client may send, and what each one
does (the catalogue)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter

from gateway.config import GatewayConfig
from gateway.deps import Caller, Models
from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import ErrorResponse, ModelCard, ModelList
from gateway.upstream.balancer import Balancer
from policies import Policy


def catalogue(
    config: GatewayConfig,
    policies: Mapping[str, Policy],
    balancer: Balancer,
    router_info: dict[str, Any],
) -> ModelList:
    tiers = {t: balancer.tier_available(t) for t in config.tier_order()}
    facts = config.tier_facts()
    cards = [
        ModelCard(
            id="auto",
            tiergate={
                "kind": "router",
                "policy": config.default_policy,
                "router": router_info,
                "tiers_available": tiers,
                "routes": {
                    name: facts.resolve(target.tier) for name, target in facts.routes.items()
                },
            },
        )
    ]
    for name, policy in policies.items():
        cards.append(
            ModelCard(
                id=f"auto:{name}",
                tiergate={
                    "kind": "router",
                    "policy": name,
                    "description": policy.spec.description,
                    "threshold": policy.threshold,
                    "target_strong_fraction": policy.spec.target_strong_fraction,
                    "tiers_available": tiers,
                },
            )
        )
    for name, target in balancer.targets.items():
        dep = target.deployment
        cards.append(
            ModelCard(
                id=name,
                tiergate={
                    "kind": "deployment",
                    "tier": config.tier_of(name),
                    "model": dep.model,
                    "available": target.available,
                    "price_per_mtok": {
                        "input": dep.price.per_token()[0] * 1e6,
                        "output": dep.price.per_token()[1] * 1e6,
                    },
                    "capabilities": dep.capabilities.model_dump(),
                },
            )
        )
    return ModelList(data=cards)


router = APIRouter()


@router.get("/v1/models", response_model=ModelList, responses={401: {"model": ErrorResponse}})
async def models(_caller: Caller, catalogue: Models) -> ModelList:
    # `_caller` first: the names are not for strangers (401 before the catalogue is built).
    return catalogue


@router.get(
    "/v1/models/{model_id:path}",
    response_model=ModelCard,
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def model(model_id: str, _caller: Caller, catalogue: Models) -> ModelCard:
    """One name of the catalogue (`client.models.retrieve`), or 404 listing the names."""
    for card in catalogue.data:
        if card.id == model_id:
            return card
    names = ", ".join(card.id for card in catalogue.data)
    raise GatewayError(
        404,
        f"model {model_id!r} does not exist; use one of: {names}",
        code="model_not_found",
        param="model",
    )
