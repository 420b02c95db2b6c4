"""`POST /v1/responses` through the chat pipeline: one Responses request from input to `response`.

The request is translated to chat completions once (`gateway.chat.translate`), and the chat service
routes it exactly as a chat request: the same policies, keys, limits, fallbacks, metrics and
request-log rows (with `endpoint = "responses"`), the same `x-tiergate-*` headers. What differs is
the `ResponsesWire` it is given: a deployment that serves the Responses API natively
(`capabilities.responses`) gets the request as it came (with the stored conversation it continues
expanded into `input`, since the upstream does not know the gateway's ids); every other deployment
gets the chat translation, and its answer or stream comes back as a `response` object or typed
events. A request with something chat completions cannot carry (a built-in tool such as
`web_search`) goes only to native deployments, and is a 400 when the config has none.

Storage (`store`, `previous_response_id`, `GET`/`DELETE /v1/responses/{id}`) is the
`ResponseStore`'s (`gateway.storage.responses`); with it off (`responses.store: false`), nothing
is kept and `previous_response_id` is a 400.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from gateway.access.allowance import StreamAllowance
from gateway.access.keys import ApiKey
from gateway.chat.capabilities import Need
from gateway.chat.response_stream import (
    NativeRelay,
    OnComplete,
    TranslatedRelay,
    adopt,
    estimated_output_tokens,
)
from gateway.chat.service import ChatService, Outcome
from gateway.chat.stream import StreamRelay
from gateway.chat.translate import (
    ResponseShell,
    Translation,
    chat_params,
    response_from_chat,
    to_chat,
)
from gateway.chat.wire import Endpoint, Tokens, upstream_call
from gateway.config import GatewayConfig
from gateway.lifecycle import Drain
from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import JSON
from gateway.protocol.responses import UNSUPPORTED, ResponsesRequest
from gateway.telemetry.tokens import estimate, usage_of
from gateway.upstream.base import Target, UpstreamCall

log = logging.getLogger(__name__)


class ResponseStore(Protocol):
    """Where responses are kept; the key that created a response is the only one that sees it."""

    async def save(
        self,
        response: JSON,
        *,
        input_items: list[JSON],
        key_id: str | None,
        request_id: str | None = None,
    ) -> None:
        """Committed when this returns; raises when it cannot be."""
        ...

    async def conversation(self, response_id: str, key_id: str | None) -> list[JSON]:
        """The items a response continues from: its input items, then its output (404 when
        the response is missing, expired or another key's)."""
        ...

    async def get(self, response_id: str, key_id: str | None) -> JSON:
        """The response as its client received it (404 as for `conversation`)."""
        ...

    async def delete(self, response_id: str, key_id: str | None) -> None:
        """404 as for `conversation`."""
        ...


def is_native(target: Target) -> bool:
    """The deployment serves the Responses API itself."""
    return target.deployment.capabilities.responses


class ResponsesWire:
    """How a Responses request reaches each deployment and comes back (`gateway.chat.wire`)."""

    endpoint: Endpoint = "responses"

    def __init__(
        self,
        request: ResponsesRequest,
        translation: Translation,
        shell: ResponseShell,
        on_complete: OnComplete | None,
    ) -> None:
        self.needs: frozenset[Need] = (
            frozenset({"responses"}) if translation.native_only else frozenset()
        )
        self._request = request
        self._translation = translation
        self._shell = shell
        self._on_complete = on_complete
        self._chat = upstream_call("chat", translation.chat)
        self._prompt_chars = translation.chat.prompt_chars()
        self._native: UpstreamCall | None = None

    def call(self, target: Target) -> UpstreamCall:
        if is_native(target):
            if self._native is None:
                self._native = native_call(self._request, self._translation)
            return self._native
        reasoning = target.deployment.capabilities.reasoning
        extra = chat_params(self._translation, self._request, reasoning=reasoning)
        if not extra:
            return self._chat
        params = {**self._chat.params, **extra}
        if "max_completion_tokens" in extra:
            params.pop("max_tokens", None)
        return UpstreamCall("chat", params, self._chat.extra)

    def answer(self, target: Target, body: JSON) -> tuple[JSON, Tokens]:
        self._shell.model = target.name
        if is_native(target):
            response = adopt(body, self._shell)
            used = response.get("usage") or {}
            if used.get("input_tokens") or used.get("output_tokens"):
                prompt, completion = int(used["input_tokens"]), int(used["output_tokens"])
                return response, (prompt, completion, False)
            return response, (estimate(self._prompt_chars), estimated_output_tokens(body), True)
        prompt, completion, estimated = usage_of(body, self._prompt_chars)
        response = response_from_chat(self._shell, body, prompt, completion)
        return response, (prompt, completion, estimated)

    def relay(
        self,
        target: Target,
        chunks: AsyncIterator[JSON],
        *,
        allowance: StreamAllowance | None = None,
        drain: Drain | None = None,
    ) -> StreamRelay:
        relay = NativeRelay if is_native(target) else TranslatedRelay
        return relay(
            chunks,
            target_name=target.name,
            prompt_chars=self._prompt_chars,
            shell=self._shell,
            on_complete=self._on_complete,
            allowance=allowance,
            drain=drain,
        )


def native_call(request: ResponsesRequest, translation: Translation) -> UpstreamCall:
    """The request as it came, for a native deployment: the conversation it continues expanded
    into `input` (without item ids or reasoning items, which only the gateway knows), and
    `store: false` (the gateway keeps the response; the upstream need not)."""
    extras = set(request.model_extra or {})
    data = request.model_dump(exclude_unset=True)
    params = {k: v for k, v in data.items() if k not in extras and k not in ("model", "stream")}
    if request.previous_response_id is not None:
        params.pop("previous_response_id")
        params["input"] = [
            {k: v for k, v in item.items() if k != "id"}
            for item in translation.items
            if item.get("type") != "reasoning"
        ]
    params["store"] = False
    return UpstreamCall("responses", params, {k: data[k] for k in extras if k in data})


class ResponsesService:
    """Built once at start: the chat service it routes through, and the store (None: off)."""

    def __init__(
        self, config: GatewayConfig, chat: ChatService, store: ResponseStore | None
    ) -> None:
        self._chat = chat
        self._store = store
        self._native = [n for n, d in config.deployments.items() if d.capabilities.responses]

    @property
    def store(self) -> ResponseStore:
        """The store, or 404 naming the setting when storage is off."""
        if self._store is None:
            raise GatewayError(
                404,
                "this gateway keeps no responses (responses.store is false)",
                code="not_found",
            )
        return self._store

    async def handle(
        self, request: ResponsesRequest, headers: Mapping[str, str], key: ApiKey | None
    ) -> Outcome:
        """`key` is the caller's, already authenticated (None when the gateway is open)."""
        refuse_unsupported(request)
        key_id = key.id if key is not None else None
        earlier: list[JSON] = []
        if request.previous_response_id is not None:
            if self._store is None:
                raise GatewayError(
                    400,
                    "previous_response_id needs stored responses, and this gateway keeps none "
                    "(responses.store is false): send the whole conversation as input",
                    code="invalid_request",
                    param="previous_response_id",
                )
            earlier = await self._store.conversation(request.previous_response_id, key_id)
        translation = to_chat(request, earlier)
        if translation.native_only and not self._native:
            raise GatewayError(
                400,
                f"{translation.native_only[0]} needs a deployment that serves the Responses API "
                "natively (capabilities.responses: true), and this gateway has none; only "
                "function tools and message, function_call and function_call_output items are "
                "translated for the others",
                code="unsupported_input",
                param="tools" if translation.native_only[0].startswith("tool") else "input",
            )
        keep = self._store is not None and request.store is not False
        shell = ResponseShell(request, store=keep)
        saver = _Saver(self._store, translation.items, key_id) if keep else None
        wire = ResponsesWire(request, translation, shell, saver.save if saver else None)
        outcome = await self._chat.handle("chat", translation.chat, headers, key, wire=wire)
        if saver is not None:
            saver.request_id = outcome.headers.get("x-request-id")
            if outcome.body is not None:
                try:
                    await saver.save(outcome.body)  # before the response returns: never dropped
                except Exception as exc:
                    log.exception("storing response %s failed", outcome.body.get("id"))
                    raise GatewayError(
                        503,
                        "the response could not be stored, so it is not returned; retry, or "
                        "send store: false",
                        code="store_failed",
                    ) from exc
        return outcome


class _Saver:
    """Stores one request's response: its conversation's input items, its key, its request id
    (known once the chat service has answered, before a stream's first event is sent)."""

    def __init__(self, store: ResponseStore | None, items: list[JSON], key_id: str | None) -> None:
        assert store is not None
        self._store = store
        self._items = items
        self._key_id = key_id
        self.request_id: str | None = None

    async def save(self, response: JSON) -> None:
        await self._store.save(
            response, input_items=self._items, key_id=self._key_id, request_id=self.request_id
        )


def refuse_unsupported(request: ResponsesRequest) -> None:
    """400 for fields that need state the gateway does not keep."""
    for name, what in UNSUPPORTED.items():
        value = (request.model_extra or {}).get(name, getattr(request, name, None))
        if value:
            raise GatewayError(
                400, f"{what} are not supported by this gateway; got {name}={value!r}",
                code="unsupported_parameter", param=name,
            )  # fmt: skip
