"""Calling one deployment: the `Backend` interface, its inputs, and how a failure is named.

A backend knows how to send one OpenAI-shaped request to one deployment and nothing about routing
or fallback: it either returns the upstream's answer (a JSON body, or an async iterator of stream
chunks) or raises `UpstreamError` with a bounded `kind`. What the gateway then does is decided by
the kind alone, in one table (`ERROR_KINDS`): whether the next deployment is tried, whether the same
deployment is tried again after a backoff, and whether the failure counts against its breaker.
`Refused` is the gateway's own refusal to try a deployment (open circuit, no free slot, no budget).
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from gateway.config import Deployment
from gateway.protocol.openai import JSON

OPENAI_KEY_ENV = "OPENAI_API_KEY"
"""Where OpenAI's own key is found when a deployment names none (litellm's convention)."""

ErrorKind = Literal[
    "connect",
    "timeout",
    "rate_limited",
    "server_error",
    "client_error",
    "auth_failed",
    "unencodable",
    "protocol",
    "unavailable",
]


@dataclass(frozen=True)
class KindRule:
    """What the gateway does after a failure of one kind."""

    falls_back: bool
    """The next deployment in the fallback order is tried (else the client gets this failure)."""
    retried: bool
    """The same deployment is tried again after a backoff, if its `retries` allow."""
    counts: bool
    """The failure counts against the deployment's circuit breaker: it says the deployment is
    unwell, not that the request or the caller's quota is at fault."""


ERROR_KINDS: dict[ErrorKind, KindRule] = {
    "connect": KindRule(falls_back=True, retried=True, counts=True),
    # A timeout has already cost the client the whole timeout once: never again on the same one.
    "timeout": KindRule(falls_back=True, retried=False, counts=True),
    # Retried only when its Retry-After is short (gateway.reliability.backoff); the quota is at
    # fault, not the deployment.
    "rate_limited": KindRule(falls_back=True, retried=True, counts=False),
    "server_error": KindRule(falls_back=True, retried=True, counts=True),
    # The upstream refused the request itself: the client must change it.
    "client_error": KindRule(falls_back=False, retried=False, counts=False),
    # The upstream refused the gateway's own credentials (401, 403): the operator must fix the
    # deployment's key; another deployment may still answer. Never the client's 401.
    "auth_failed": KindRule(falls_back=True, retried=False, counts=True),
    # The request could not even be built for the upstream (encoded, serialised): nothing was
    # sent, and no other deployment would take it either. The client's, as a 400.
    "unencodable": KindRule(falls_back=False, retried=False, counts=False),
    "protocol": KindRule(falls_back=True, retried=True, counts=True),
    # Not tried at all: no key, open circuit, no free slot, no budget (`Refused`).
    "unavailable": KindRule(falls_back=True, retried=False, counts=False),
}
"""Every error kind and what follows from it: the one place these choices are made."""


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from an upstream's `Retry-After`: delay-seconds or an HTTP date (RFC 9110,
    10.2.3), never negative; None when absent or unreadable. What the client is then sent is
    `gateway.protocol.errors.retry_after_header`'s business."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - now()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class UpstreamError(Exception):
    """A deployment failed. `kind` is a bounded label, safe for metrics.

    `message` may reach the client: it names what happened, or carries the upstream's own error
    message, never a URL, a key or a library's exception chain. `detail` is for the operator's
    log (URLs, exception names, the upstream's raw answer); it defaults to `message`.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.detail = detail if detail is not None else message
        self.status = status
        self.retry_after = retry_after

    @property
    def falls_back(self) -> bool:
        """Another deployment may answer where this one failed (`ERROR_KINDS`)."""
        return ERROR_KINDS[self.kind].falls_back

    @property
    def retried(self) -> bool:
        """Worth another attempt on the same deployment (`ERROR_KINDS`)."""
        return ERROR_KINDS[self.kind].retried

    @property
    def counts(self) -> bool:
        """Counts against the deployment's circuit breaker (`ERROR_KINDS`)."""
        return ERROR_KINDS[self.kind].counts

    @classmethod
    def from_status(
        cls,
        status: int,
        upstream_message: str,
        retry_after: float | None = None,
        *,
        detail: str | None = None,
    ) -> UpstreamError:
        """An HTTP error answer, classified by its status alike for every backend.
        `upstream_message` is the upstream's own error message (the client may read it when the
        request itself was refused); `detail` what the operator's log should say."""
        message = f"upstream answered {status}: {upstream_message}"
        if status in (401, 403):
            # The upstream's message may quote (masked) the gateway's key: the client never
            # sees it; the operator's log does.
            return cls(
                "auth_failed",
                f"upstream refused the gateway's credentials ({status})",
                status=status,
                detail=detail or message,
            )
        kind: ErrorKind = "protocol"
        if status == 429:
            kind = "rate_limited"
        elif status >= 500:
            kind = "server_error"
        elif status >= 400:
            kind = "client_error"
        return cls(kind, message, status=status, retry_after=retry_after, detail=detail)


BUILD_ERRORS: tuple[type[BaseException], ...] = (UnicodeError, RecursionError)
"""What encoding a request raises when the request itself cannot be encoded (a lone surrogate,
nesting past the encoder's depth): seen anywhere in a backend's exception chain, the failure is
`unencodable`. orjson's own error is a `TypeError` and is named by the backend that uses it."""


def built_locally(exc: BaseException) -> BaseException | None:
    """The `BUILD_ERRORS` exception in `exc`'s chain (`__cause__` / `__context__`), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BUILD_ERRORS):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def unencodable(cause: BaseException) -> UpstreamError:
    """The request could not be built for the upstream: the client's error, and nothing was
    sent (`unencodable` counts against no breaker and falls back nowhere)."""
    what = "a string is not valid Unicode" if isinstance(cause, UnicodeError) else "too deep"
    return UpstreamError(
        "unencodable",
        f"the request cannot be encoded for the upstream ({what})",
        status=400,
        detail=f"building the request failed: {type(cause).__name__}: {cause}",
    )


class Refused(UpstreamError):
    """The gateway itself did not try a deployment: its circuit is open, it is at capacity, or
    the caller's budget cannot pay for it.

    Its kind is `unavailable` (a bounded metric label, and the service falls back); `reason` says
    which, and `retry_after` when it is worth trying again.
    """

    def __init__(
        self,
        reason: Literal["circuit_open", "at_capacity", "over_budget"],
        message: str,
        retry_after: float,
    ) -> None:
        super().__init__("unavailable", message, retry_after=retry_after)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """One deployment, ready to call: its config and its resolved API key."""

    name: str
    deployment: Deployment
    api_key: str | None

    @classmethod
    def from_config(cls, name: str, deployment: Deployment, env: Mapping[str, str]) -> Target:
        """The key named by `api_key_env`; for OpenAI itself on the direct backend (no
        `api_base`, no `api_key_env`) `OPENAI_API_KEY` if set, which is what litellm reads."""
        key = env.get(deployment.api_key_env) if deployment.api_key_env else None
        openai_itself = deployment.api_base is None and deployment.model.startswith("openai/")
        if deployment.api_key_env is None and openai_itself:
            key = env.get(OPENAI_KEY_ENV) if deployment.backend == "openai-compatible" else None
        return cls(name, deployment, key or None)

    @property
    def available(self) -> bool:
        """False when the deployment needs a key that is not set: it cannot be reached."""
        return self.deployment.api_key_env is None or self.api_key is not None


@dataclass(frozen=True)
class UpstreamCall:
    """An OpenAI request, split into the fields we know and the ones we pass through blind."""

    endpoint: Literal["chat", "completions", "responses", "embeddings"]
    """Which OpenAI endpoint: `/chat/completions`, `/completions`, `/responses` (a deployment
    that serves the Responses API natively), `/embeddings`."""
    params: JSON
    """Validated fields of our protocol models (without `model` and `stream`)."""
    extra: JSON = field(default_factory=dict)
    """Fields we do not know; sent to the upstream as they came."""
    injected: tuple[str, ...] = ()
    """Fields of `params` the gateway added and the client did not send: the completion cap of
    a key with a budget or tpm limit (`max_completion_tokens` or `max_tokens`). A `length`
    finish under an injected cap is the gateway's doing, not the client's."""


class Backend(Protocol):
    async def complete(self, target: Target, call: UpstreamCall) -> JSON:
        """The upstream's JSON answer (OpenAI shape), or UpstreamError."""
        ...

    def stream(self, target: Target, call: UpstreamCall) -> AsyncIterator[JSON]:
        """An iterator of OpenAI stream chunks. Errors before the first chunk raise
        UpstreamError from the first `__anext__`; later ones from wherever they happen."""
        ...

    async def aclose(self) -> None: ...
