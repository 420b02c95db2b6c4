"""The direct backend: one pooled HTTP client per upstream, for servers that speak OpenAI natively.

vLLM, llama.cpp's server, TGI's OpenAI route, and OpenAI itself already take the request the client
sent us, so the gateway forwards it with one keep-alive connection pool per base URL instead of
going through litellm (which costs several milliseconds of CPU per call translating and
re-validating what needs no translation). A deployment picks it with `backend: openai-compatible`,
or by default (`backend: auto`) when its model starts with `openai/`, `hosted_vllm/` or `vllm/`.

The client is aiohttp, not httpx: on this path httpx costs about 0.7 ms of CPU per request alone
and over 1 ms under concurrency (its connection pool scans every connection, with a `poll` system
call for each idle one, on every request), against under 0.2 ms for aiohttp; see bench/RESULTS.md.
Proxy environment variables are not read (`trust_env=False`, a per-request cost): upstreams are
reached directly.

What reaches the upstream is `{**params, **extra, "model": <served name>, "stream": <bool>}`. The
served name is the deployment's `model` with a litellm provider prefix (`openai/`, `hosted_vllm/`,
...) removed, so a config written for litellm works unchanged: `hosted_vllm/smollm2-135m` is sent as
`smollm2-135m`. Names whose first segment is not such a prefix (`meta-llama/Llama-3.1-8B`) are sent
as they are. Failures raise `UpstreamError` with the same kinds as the litellm backend, so fallback
behaves the same whichever backend a deployment uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from gateway.config import Deployment
from gateway.protocol.openai import JSON, dumps
from gateway.upstream.base import (
    Target,
    UpstreamCall,
    UpstreamError,
    parse_retry_after,
    unencodable,
)

OPENAI_BASE = "https://api.openai.com/v1"
"""Where a deployment without `api_base` is sent."""

PROVIDER_PREFIXES = (
    "openai/",
    "hosted_vllm/",
    "vllm/",
    "custom_openai/",
    "text-completion-openai/",
)
"""litellm provider prefixes meaning "an OpenAI-compatible server": stripped from `model`."""

_PATHS = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "responses": "/responses",
    "embeddings": "/embeddings",
}
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
"""The Responses API's last events: its streams end with one of them, not with [DONE]."""
_MAX_ERROR_CHARS = 500


def served_model(model: str) -> str:
    """The model name the upstream knows, from a deployment's (possibly litellm-style) `model`."""
    for prefix in PROVIDER_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def request_timeout(deployment: Deployment) -> aiohttp.ClientTimeout:
    """The timeouts for one call to `deployment`.

    No total: `connect` bounds getting a connection (from the pool or new), `sock_read` the wait
    for the first byte and then the gap between two reads, so a long stream that keeps flowing is
    never cut while a stalled upstream is abandoned after `timeout_s`. The one place to add
    separate connect or first-byte limits.
    """
    return aiohttp.ClientTimeout(
        total=None, connect=deployment.connect_timeout_s, sock_read=deployment.timeout_s
    )


@dataclass(frozen=True)
class _Route:
    """Everything about one target that does not change between requests, computed once."""

    target: Target
    base: str
    client: aiohttp.ClientSession
    urls: dict[str, str]
    headers: dict[str, str]
    model: str
    timeout: aiohttp.ClientTimeout


class OpenAICompatibleBackend:
    """`Backend` for OpenAI-compatible servers: JSON and SSE streams over pooled HTTP/1.1."""

    def __init__(self, *, max_connections: int = 512) -> None:
        self._max_connections = max_connections
        self._clients: dict[str, aiohttp.ClientSession] = {}
        self._routes: dict[str, _Route] = {}

    # --- Backend --------------------------------------------------------------------------------

    async def complete(self, target: Target, call: UpstreamCall) -> JSON:
        route = self._route(target)
        body = _body(route, call, stream=False)
        try:
            async with route.client.post(
                route.urls[call.endpoint],
                data=body,
                headers=route.headers,
                timeout=route.timeout,
                allow_redirects=False,
            ) as response:
                content = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, route) from exc
        if response.status != 200:
            raise _status_error(response.status, response.headers, content)
        return _decode_object(content, "body")

    async def stream(self, target: Target, call: UpstreamCall) -> AsyncIterator[JSON]:
        route = self._route(target)
        body = _body(route, call, stream=True)
        try:
            response = await route.client.post(
                route.urls[call.endpoint],
                data=body,
                headers=route.headers,
                timeout=route.timeout,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, route) from exc
        try:
            if response.status != 200:
                raise _status_error(response.status, response.headers, await response.read())
            finished = False
            async with contextlib.aclosing(_sse_data(response)) as events:
                async for data in events:
                    if data == b"[DONE]":
                        return
                    chunk = _decode_object(data, "stream chunk")
                    if _is_error_event(chunk):
                        raise UpstreamError(
                            "server_error",
                            f"upstream error event: {_error_message(data)}",
                            detail=f"upstream error event: {_text(data)}",
                        )
                    finished = finished or _finishes(chunk)
                    yield chunk
            if not finished:
                raise UpstreamError("protocol", "upstream stream ended before [DONE]")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(exc, route) from exc
        finally:
            # A stream left unread cannot go back to the pool: close its connection. A finished
            # one was released when its last byte was read, and close() is then a no-op.
            response.close()

    async def aclose(self) -> None:
        clients, self._clients, self._routes = self._clients, {}, {}
        for client in clients.values():
            await client.close()

    # --- per target -----------------------------------------------------------------------------

    def _route(self, target: Target) -> _Route:
        route = self._routes.get(target.name)
        if route is None or route.target is not target:
            route = self._routes[target.name] = self._build_route(target)
        return route

    def _build_route(self, target: Target) -> _Route:
        dep = target.deployment
        base = (dep.api_base or OPENAI_BASE).rstrip("/")
        client = self._clients.get(base)
        if client is None:
            # Each call passes its deployment's timeout, and refuses redirects: an upstream that
            # redirects a POST is misconfigured, and its 3xx fails the call as `protocol`.
            client = self._clients[base] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=False,
                raise_for_status=False,
            )
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        urls = {endpoint: base + path for endpoint, path in _PATHS.items()}
        model = served_model(dep.model)
        return _Route(target, base, client, urls, headers, model, request_timeout(dep))


def _body(route: _Route, call: UpstreamCall, *, stream: bool) -> bytes:
    """The request's JSON; `unencodable` (the client's 400) when it cannot be encoded."""
    body = {**call.params, **call.extra, "model": route.model}
    if call.endpoint != "embeddings":  # no `stream` there: OpenAI refuses unknown fields
        body["stream"] = stream
    try:
        return dumps(body)
    except (UnicodeError, RecursionError, ValueError) as exc:  # ValueError: NaN (allow_nan)
        raise unencodable(exc) from exc


async def _sse_data(response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
    """The payload of each `data:` line, in bytes. Comments, `event:` and `id:` lines are skipped;
    OpenAI-compatible servers put each event's JSON on one `data:` line."""
    pending = b""
    async for block in response.content.iter_any():
        pending += block
        if b"\n" not in block:
            continue
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                yield line[5:].strip()
    if pending.startswith(b"data:"):
        yield pending[5:].strip()


def _is_error_event(chunk: JSON) -> bool:
    """An error in place of a chunk: `{"error": ...}` in a chat stream, a Responses `error`."""
    if chunk.get("type") == "error":
        return True
    return "error" in chunk and not chunk.get("choices") and "type" not in chunk


def _finishes(chunk: JSON) -> bool:
    """The chunk ends the answer: a choice's `finish_reason`, or a Responses terminal event."""
    if chunk.get("type") in _TERMINAL:
        return True
    return any(c.get("finish_reason") for c in chunk.get("choices") or ())


def _decode_object(data: bytes, what: str) -> JSON:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(
            "protocol",
            f"upstream sent a {what} that is not JSON",
            detail=f"upstream sent a {what} that is not JSON ({exc}): {_text(data)}",
        ) from exc
    if not isinstance(value, dict):
        raise UpstreamError("protocol", f"upstream sent a {what} that is not an object")
    return value


def _transport_error(exc: Exception, route: _Route) -> UpstreamError:
    """No usable HTTP answer: the connection failed, timed out, or broke mid-response. The
    client reads what happened; the operator's log also where and the library's exception."""
    where = route.base
    cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts subclass it
        message, detail = "upstream timed out", f"{where} timed out ({cause})"
        return UpstreamError("timeout", message, detail=detail)
    if isinstance(exc, aiohttp.ClientConnectorError):
        message, detail = "cannot connect to the upstream", f"cannot connect to {where} ({cause})"
        return UpstreamError("connect", message, detail=detail)
    message, detail = "upstream broke the connection", f"{where} broke the connection ({cause})"
    return UpstreamError("protocol", message, detail=detail)


def _status_error(status: int, headers: Mapping[str, str], content: bytes) -> UpstreamError:
    """An HTTP error answer, classified by status, with the upstream's own message in it."""
    return UpstreamError.from_status(status, _error_message(content), _retry_after(headers))


def _error_message(content: bytes) -> str:
    """OpenAI's `error.message` when the body is its envelope, else the start of the body."""
    try:
        error: Any = orjson.loads(content).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return _text(content)
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:_MAX_ERROR_CHARS]
    if isinstance(error, str):
        return error[:_MAX_ERROR_CHARS]
    return _text(content)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `Retry-After` (a number or an HTTP date); `headers` is case-insensitive."""
    return parse_retry_after(headers.get("Retry-After"))


def _text(data: bytes) -> str:
    return data[:_MAX_ERROR_CHARS].decode("utf-8", "replace")
