"""The litellm backend: any provider litellm speaks to (OpenAI, Anthropic, Bedrock, vLLM ...).

litellm translates the OpenAI-shaped request for the provider and back. Our own retries and
fallbacks are the only ones: litellm's are turned off. Its exceptions are mapped onto the bounded
error kinds of `gateway.upstream.base`, so fallback behaves alike whichever backend a deployment
uses; its own bookkeeping fields are removed from every answer.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx

from gateway.protocol.openai import JSON
from gateway.upstream.base import (
    Target,
    UpstreamCall,
    UpstreamError,
    built_locally,
    parse_retry_after,
    unencodable,
)
from gateway.upstream.openai import PROVIDER_PREFIXES, served_model


class LiteLLMBackend:
    """Any provider litellm speaks to (OpenAI, Anthropic, Bedrock, vLLM ...), JSON and streams."""

    def __init__(self) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        litellm.drop_params = False
        # httpx, not aiohttp, and one pool that we own: litellm otherwise opens clients it never
        # closes (text completions make a new one per call).
        litellm.disable_aiohttp_transport = True
        self._http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
            timeout=None,
            follow_redirects=True,
        )
        litellm.aclient_session = self._http
        self._litellm = litellm
        self._clients: dict[str, Any] = {}

    def _kwargs(self, target: Target, call: UpstreamCall, stream: bool) -> JSON:
        dep = target.deployment
        kwargs: JSON = {
            **call.params,
            "model": dep.model,
            "stream": stream,
            "timeout": httpx.Timeout(dep.timeout_s, connect=dep.connect_timeout_s),
            "num_retries": 0,
            "max_retries": 0,
        }
        if dep.api_base:
            kwargs["api_base"] = dep.api_base
            # OpenAI-compatible servers often need no key, but the client insists on one.
            kwargs["api_key"] = target.api_key or "none"
        elif target.api_key:
            kwargs["api_key"] = target.api_key
        extra = dict(call.extra)
        if call.endpoint == "chat" and _keeps_developer_role(dep.model, call.params):
            # litellm rewrites `developer` to `system` for every provider but OpenAI's o-series;
            # an OpenAI-protocol server takes it as it is, as on the direct backend. The client
            # merges `extra_body` over the body it built, so the messages go out as they came.
            extra["messages"] = call.params["messages"]
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    async def _openai_embeddings(self, target: Target, call: UpstreamCall) -> JSON:
        """Embeddings from an OpenAI-protocol server, with the `openai` client litellm itself
        uses: litellm 1.106 reads `max_retries or DEFAULT_MAX_RETRIES` for embeddings, so our
        `max_retries=0` became two hidden retries, and retries must be ours alone."""
        dep = target.deployment
        client = self._clients.get(target.name)
        if client is None:
            import openai

            client = self._clients[target.name] = openai.AsyncOpenAI(
                api_key=target.api_key or "none",
                base_url=dep.api_base or "https://api.openai.com/v1",
                http_client=self._http,
                max_retries=0,
            )
        try:
            response = await client.embeddings.create(
                **call.params,
                model=served_model(dep.model),
                extra_body=dict(call.extra) or None,
                timeout=httpx.Timeout(dep.timeout_s, connect=dep.connect_timeout_s),
            )
        except Exception as exc:
            raise _classify(exc) from exc
        body: JSON = response.model_dump(exclude_none=True)
        return body

    def _entry(self, endpoint: str) -> Any:
        """litellm's function for an endpoint. Not `aresponses`: in litellm 1.106 its streams
        lose `sequence_number`, re-chunk a whole answer instead of streaming it for some
        providers, and its types warn when they serialize; a deployment that serves the
        Responses API natively uses the direct backend (`gateway.config.schema.Deployment`)."""
        entries = {
            "chat": self._litellm.acompletion,
            "completions": self._litellm.atext_completion,
            "embeddings": self._litellm.aembedding,
        }
        if endpoint not in entries:
            raise UpstreamError("client_error", f"the litellm backend does not call {endpoint}")
        return entries[endpoint]

    async def complete(self, target: Target, call: UpstreamCall) -> JSON:
        if call.endpoint == "embeddings" and target.deployment.model.startswith(PROVIDER_PREFIXES):
            return await self._openai_embeddings(target, call)
        kwargs = self._kwargs(target, call, stream=False)
        if call.endpoint == "embeddings":
            del kwargs["stream"]
        try:
            response = await self._entry(call.endpoint)(**kwargs)
        except Exception as exc:
            raise _classify(exc) from exc
        body: JSON = _clean(response.model_dump(exclude_none=True))
        return body

    async def stream(self, target: Target, call: UpstreamCall) -> AsyncIterator[JSON]:
        kwargs = self._kwargs(target, call, stream=True)
        try:
            chunks = await self._entry(call.endpoint)(**kwargs)
            async for chunk in chunks:
                body = _clean(chunk.model_dump(exclude_none=True))
                if call.endpoint == "completions":
                    _complete_text_choices(body)
                yield body
        except UpstreamError:
            raise
        except Exception as exc:
            raise _classify(exc) from exc

    async def aclose(self) -> None:
        """Close litellm's cached HTTP clients: they belong to the event loop that is ending."""
        from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients

        await close_litellm_async_clients()  # type: ignore[no-untyped-call]
        self._litellm.in_memory_llm_clients_cache.flush_cache()  # type: ignore[no-untyped-call]
        if self._litellm.aclient_session is self._http:
            self._litellm.aclient_session = None
        self._clients.clear()  # they use `self._http`, closed next
        await self._http.aclose()


_LITELLM_ONLY = ("provider_specific_fields",)
_MAX_MESSAGE_CHARS = 500


def _keeps_developer_role(model: str, params: JSON) -> bool:
    """Whether a chat request has `developer` messages that litellm would rewrite although the
    upstream (an OpenAI-protocol server, by its model prefix) accepts them."""
    if not model.startswith(PROVIDER_PREFIXES):
        return False
    messages = params.get("messages") or ()
    return any(isinstance(m, dict) and m.get("role") == "developer" for m in messages)


def _complete_text_choices(chunk: JSON) -> None:
    """A text-completion chunk as OpenAI sends it: every choice has `text` (litellm's last
    chunk, the one with `finish_reason`, has none, and clients concatenate `None`)."""
    for choice in chunk.get("choices") or ():
        choice.setdefault("text", "")
        choice.setdefault("logprobs", None)
        choice.setdefault("finish_reason", None)


def _clean(value: Any) -> Any:
    """Drop litellm's own bookkeeping (`_hidden_params`, `provider_specific_fields`) at every
    level: clients should see OpenAI's shape only."""
    if isinstance(value, dict):
        return {
            k: _clean(v)
            for k, v in value.items()
            if not k.startswith("_") and k not in _LITELLM_ONLY
        }
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _classify(exc: Exception) -> UpstreamError:
    """Map litellm's (and httpx's) exceptions onto our bounded error kinds. litellm's own text
    (its exception names, `OpenAIException - ...`) goes to the operator's log as `detail`; the
    client may read the upstream's own error message and what happened, nothing more."""
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    detail = str(exc) or name
    local = built_locally(exc)
    if local is not None:  # litellm wraps its own encoding error as a 500: it is the request's
        return unencodable(local)
    if isinstance(exc, TimeoutError) or "Timeout" in name:
        return UpstreamError("timeout", "upstream timed out", status=status, detail=detail)
    if "APIConnectionError" in name or "ConnectError" in name or "Connection error" in detail:
        # litellm reports a refused connection as a 500 whose message says so.
        return UpstreamError("connect", "cannot connect to the upstream", detail=detail)
    if "Expecting" in detail or "JSONDecodeError" in detail:
        return UpstreamError("protocol", "upstream sent a body that is not JSON", detail=detail)
    if isinstance(status, int):
        message = _upstream_message(exc, detail)
        return UpstreamError.from_status(status, message, _retry_after(exc), detail=detail)
    return UpstreamError("protocol", "upstream answer could not be read", detail=detail)


def _upstream_message(exc: Exception, detail: str) -> str:
    """The upstream's own error message: OpenAI's `error.message` when litellm kept the body,
    else litellm's text after its last `Exception - ` prefix."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:_MAX_MESSAGE_CHARS]
    return detail.rpartition("Exception - ")[2][:_MAX_MESSAGE_CHARS]


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
    return parse_retry_after(str(value)) if value is not None else None
