"""`POST /v1/embeddings`: relayed to the deployment the client names, with the chat pipeline's keys,
limits, breaker, retries, metrics and request-log rows (`endpoint = "embeddings"`).

There is no routing: an embedding model is chosen for its vector space, and two models' vectors
cannot be mixed, so the client names a deployment marked `capabilities.embeddings` (it need not
belong to a tier) and only that one is tried. The request is priced at its input price; there is no
cheaper tier to compare with, so its counterfactual cost is its cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from gateway.access.keys import ApiKey, authorize
from gateway.access.quota import Quota, Ticket
from gateway.chat.attempt import Attempts, finish_failed
from gateway.chat.ledger import Ledger
from gateway.chat.service import Outcome
from gateway.config import GatewayConfig, Price
from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import EmbeddingsRequest
from gateway.telemetry.record import Telemetry
from gateway.telemetry.tokens import estimate, reservation_estimate
from gateway.upstream.base import Target, UpstreamCall


class EmbeddingsService:
    def __init__(
        self,
        config: GatewayConfig,
        targets: Mapping[str, Target],
        attempts: Attempts,
        quota: Quota,
        sinks: Sequence[Telemetry],
    ) -> None:
        self._config = config
        self._targets = {n: t for n, t in targets.items() if t.deployment.capabilities.embeddings}
        self._attempts = attempts
        self._quota = quota
        self._sinks = list(sinks)

    async def handle(
        self, request: EmbeddingsRequest, headers: Mapping[str, str], key: ApiKey | None
    ) -> Outcome:
        """`key` is the caller's, already authenticated (None when the gateway is open)."""
        known = self._targets.get(request.model)
        # The counterfactual is the cost itself: the ledger prices it at the deployment's price.
        price = known.deployment.price if known is not None else Price()
        ledger = Ledger(
            self._sinks,
            self._quota,
            price,
            request_id=headers.get("x-request-id"),
            endpoint="embeddings",
            api_key_id=key.id if key is not None else None,
            stream=False,
        )
        try:
            target = self._resolve(request.model)
            authorize(key, policy=None, deployment=target.name)
            tier = self._config.tier_of(target.name)
            ledger.direct(tier)
            ticket = await self._admit(target, request, key, ledger)
            answer = await self._attempts.complete([target], ticket, _call(request))
            body = answer.body
            body["model"] = target.name
            ledger.served(target.name, tier, answer.failures)
            ledger.upstream(answer.upstream_s)
            reported = (body.get("usage") or {}).get("prompt_tokens")
            prompt = int(reported) if reported else estimate(request.prompt_chars())
            ledger.usage(price, prompt, 0, estimated=not reported)
            ledger.finish()
        except GatewayError as exc:
            finish_failed(ledger, exc)
            exc.headers.setdefault("x-request-id", ledger.request_id)
            raise
        except asyncio.CancelledError:
            ledger.aborted()
            ledger.finish()
            raise
        except Exception:
            ledger.crashed()
            ledger.finish()
            raise
        rec = ledger.record
        return Outcome(
            {
                "x-request-id": rec.request_id,
                "x-tiergate-deployment": target.name,
                "x-tiergate-cost-usd": f"{rec.cost_usd:.10f}",
            },
            body=body,
        )

    def _resolve(self, model: str) -> Target:
        target = self._targets.get(model)
        if target is not None:
            return target
        names = ", ".join(self._targets) or "none is configured (capabilities.embeddings: true)"
        routed = model == "auto" or model.startswith("auto:")
        why = "embeddings are not routed: name a deployment" if routed else "no such deployment"
        raise GatewayError(
            404,
            f"model {model!r} cannot serve embeddings ({why}); embedding deployments: {names}",
            code="model_not_found",
            param="model",
        )

    async def _admit(
        self, target: Target, request: EmbeddingsRequest, key: ApiKey | None, ledger: Ledger
    ) -> Ticket | None:
        if key is None:
            return None
        tokens = reservation_estimate(request.prompt_chars())
        cost = target.deployment.price.cost(tokens, 0)
        ticket = await self._quota.admit(
            key, tokens=tokens, cost_usd=cost, small_cost_usd=None, downgrade=(),
            costs={target.name: cost},
        )  # fmt: skip
        ledger.holds(ticket)
        return ticket


def _call(request: EmbeddingsRequest) -> UpstreamCall:
    extras = set(request.model_extra or {})
    data = request.model_dump(exclude_unset=True)
    params = {k: v for k, v in data.items() if k not in extras and k != "model"}
    return UpstreamCall("embeddings", params, {k: data[k] for k in extras if k in data})
