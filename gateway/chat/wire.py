"""How one OpenAI dialect reaches a deployment and comes back: the part of a request's life that
depends on what the client speaks.

The chat service plans, admits, walks the candidates and keeps the ledger the same way for every
endpoint; a `Wire` supplies what differs: the upstream call for a given deployment (a Responses
request goes as chat completions to most deployments, as it came to one that serves the Responses
API natively), the JSON answer as the client expects it with its token counts, and the relay that
turns a deployment's stream into the client's events. `ChatWire` is chat completions and legacy
completions, sent as they came; `gateway.chat.responses` has the Responses API's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Literal, Protocol

from gateway.access.allowance import StreamAllowance
from gateway.chat.capabilities import Need
from gateway.chat.stream import StreamRelay
from gateway.lifecycle import Drain
from gateway.protocol.openai import JSON, RoutedRequest
from gateway.telemetry.tokens import usage_of
from gateway.upstream.base import Target, UpstreamCall

Endpoint = Literal["chat", "completions", "responses"]
Tokens = tuple[int, int, bool]
"""(prompt tokens, completion tokens, estimated)."""


class Wire(Protocol):
    @property
    def endpoint(self) -> Endpoint:
        """The request log's and the metrics' name for the endpoint."""
        ...

    @property
    def needs(self) -> frozenset[Need]:
        """What a deployment must have beyond what the request's content shows."""
        ...

    def call(self, target: Target) -> UpstreamCall:
        """What is sent to `target`."""
        ...

    def answer(self, target: Target, body: JSON) -> tuple[JSON, Tokens]:
        """`target`'s JSON answer as the client gets it, and the tokens it used."""
        ...

    def relay(
        self,
        target: Target,
        chunks: AsyncIterator[JSON],
        *,
        allowance: StreamAllowance | None = None,
        drain: Drain | None = None,
    ) -> StreamRelay:
        """The relay of `target`'s stream; `allowance` and `drain` as for `StreamRelay`."""
        ...


class ChatWire:
    """Chat completions and text completions: the request goes to every deployment as it came
    (known fields and pass-through extras), the answer comes back renamed to the deployment."""

    needs: frozenset[Need] = frozenset()

    def __init__(self, endpoint: Literal["chat", "completions"], request: RoutedRequest) -> None:
        self.endpoint: Endpoint = endpoint
        self._request = request
        self._call = upstream_call(endpoint, request)

    def call(self, target: Target) -> UpstreamCall:
        return self._call

    def answer(self, target: Target, body: JSON) -> tuple[JSON, Tokens]:
        body["model"] = target.name
        return body, usage_of(body, self._request.prompt_chars())

    def relay(
        self,
        target: Target,
        chunks: AsyncIterator[JSON],
        *,
        allowance: StreamAllowance | None = None,
        drain: Drain | None = None,
    ) -> StreamRelay:
        options = self._request.stream_options
        return StreamRelay(
            chunks,
            target_name=target.name,
            client_wants_usage=bool(options and options.include_usage),
            prompt_chars=self._request.prompt_chars(),
            allowance=allowance,
            drain=drain,
        )


def upstream_call(endpoint: Literal["chat", "completions"], request: RoutedRequest) -> UpstreamCall:
    """Split the request into known fields and pass-through extras; always ask for usage."""
    extras = set(request.model_extra or {})
    data = request.model_dump(exclude_unset=True, exclude_none=False)
    params = {k: v for k, v in data.items() if k not in extras and k not in ("model", "stream")}
    if request.stream:
        params["stream_options"] = {**(params.get("stream_options") or {}), "include_usage": True}
    return UpstreamCall(endpoint, params, {k: data[k] for k in extras if k in data})


CAP_FIELDS: dict[str, tuple[str, ...]] = {
    "chat": ("max_completion_tokens", "max_tokens"),
    "completions": ("max_tokens", "max_completion_tokens"),
    "responses": ("max_output_tokens",),
}
"""Per endpoint, the fields that bound a completion; the first is the one the gateway sends
(OpenAI's current name for chat, the only one for text completions and the Responses API)."""


def capped(call: UpstreamCall, cap: int | None) -> UpstreamCall:
    """`call` with `cap` (a key with limits: `Plan.completion_cap`) as its completion limit when
    the client set none, marked as injected; `call` itself otherwise (embeddings have none)."""
    names = CAP_FIELDS.get(call.endpoint)
    if cap is None or names is None or any(call.params.get(n) is not None for n in names):
        return call
    name = names[0]
    return replace(call, params={**call.params, name: cap}, injected=(*call.injected, name))
