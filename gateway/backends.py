"""Calling one deployment: the `Backend` interface and its litellm implementation.

A backend knows how to send one OpenAI-shaped request to one deployment and nothing about routing
or fallback: it either returns the upstream's answer (a JSON body, or an async iterator of stream
chunks) or raises `UpstreamError` with a `kind` the service uses to decide whether another
deployment should try. Our own retries and fallbacks are the only ones: litellm's are turned off.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from gateway.config import Deployment

JSON = dict[str, Any]
ErrorKind = Literal[
    "connect", "timeout", "rate_limited", "server_error", "client_error", "protocol", "unavailable"
]
RETRYABLE: frozenset[str] = frozenset(
    {"connect", "timeout", "rate_limited", "server_error", "protocol", "unavailable"}
)


class UpstreamError(Exception):
    """A deployment failed. `kind` is a bounded label, safe for metrics."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    @classmethod
    def from_status(
        cls, status: int, message: str, retry_after: float | None = None
    ) -> UpstreamError:
        """An HTTP error answer, classified by its status alike for every backend."""
        if status == 429:
            return cls("rate_limited", message, status=status, retry_after=retry_after)
        if status >= 500:
            return cls("server_error", message, status=status)
        if status >= 400:
            return cls("client_error", message, status=status)
        return cls("protocol", message, status=status)


@dataclass(frozen=True)
class Target:
    """One deployment, ready to call: its config and its resolved API key."""

    name: str
    deployment: Deployment
    api_key: str | None

    @classmethod
    def from_config(cls, name: str, deployment: Deployment, env: Mapping[str, str]) -> Target:
        key = env.get(deployment.api_key_env) if deployment.api_key_env else None
        return cls(name, deployment, key or None)

    @property
    def available(self) -> bool:
        """False when the deployment needs a key that is not set: it cannot be reached."""
        return self.deployment.api_key_env is None or self.api_key is not None


@dataclass(frozen=True)
class UpstreamCall:
    """An OpenAI request, split into the fields we know and the ones we pass through blind."""

    endpoint: Literal["chat", "completions"]
    params: JSON
    """Validated fields of our protocol models (without `model` and `stream`)."""
    extra: JSON = field(default_factory=dict)
    """Fields we do not know; sent to the upstream as they came."""


class Backend(Protocol):
    async def complete(self, target: Target, call: UpstreamCall) -> JSON:
        """The upstream's JSON answer (OpenAI shape), or UpstreamError."""
        ...

    def stream(self, target: Target, call: UpstreamCall) -> AsyncIterator[JSON]:
        """An iterator of OpenAI stream chunks. Errors before the first chunk raise
        UpstreamError from the first `__anext__`; later ones from wherever they happen."""
        ...

    async def aclose(self) -> None: ...


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
        if call.extra:
            kwargs["extra_body"] = dict(call.extra)
        return kwargs

    async def complete(self, target: Target, call: UpstreamCall) -> JSON:
        kwargs = self._kwargs(target, call, stream=False)
        try:
            if call.endpoint == "chat":
                response = await self._litellm.acompletion(**kwargs)
            else:
                response = await self._litellm.atext_completion(**kwargs)
        except Exception as exc:
            raise _classify(exc) from exc
        body: JSON = _clean(response.model_dump(exclude_none=True))
        return body

    async def stream(self, target: Target, call: UpstreamCall) -> AsyncIterator[JSON]:
        kwargs = self._kwargs(target, call, stream=True)
        try:
            if call.endpoint == "chat":
                chunks = await self._litellm.acompletion(**kwargs)
            else:
                chunks = await self._litellm.atext_completion(**kwargs)
            async for chunk in chunks:
                yield _clean(chunk.model_dump(exclude_none=True))
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
        await self._http.aclose()


_LITELLM_ONLY = ("provider_specific_fields",)


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
    """Map litellm's (and httpx's) exceptions onto our bounded error kinds."""
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    message = str(exc) or name
    if isinstance(exc, TimeoutError) or "Timeout" in name:
        return UpstreamError("timeout", message, status=status)
    if "APIConnectionError" in name or "ConnectError" in name or "Connection error" in message:
        # litellm reports a refused connection as a 500 whose message says so.
        return UpstreamError("connect", message, status=None)
    if "Expecting" in message or "JSONDecodeError" in message:
        return UpstreamError("protocol", f"upstream sent a body that is not JSON: {message}")
    if isinstance(status, int):
        return UpstreamError.from_status(status, message, _retry_after(exc))
    return UpstreamError("protocol", message, status=status)


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
