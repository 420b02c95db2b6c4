"""FastAPI dependencies: how a route gets the services built at start-up and the caller's key.

The app puts each service on `app.state` once (`gateway.app`); this module is the only reader.
Routes declare what they need with the `Annotated` types below and never touch `request.app.state`.

Routes with a request body get their key as `BodyCaller`: it was checked from the headers before
the body was read (`gateway.access.authenticate`), so a client without a key gets its 401 without
the gateway reading, parsing or validating a byte of the body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, cast

from fastapi import Depends, Request

from gateway.access.authenticate import STATE_KEY
from gateway.access.keys import ApiKey, KeyRing
from gateway.access.quota import Quota
from gateway.chat.embeddings import EmbeddingsService
from gateway.chat.responses import ResponsesService
from gateway.chat.service import ChatService
from gateway.config import Limits
from gateway.lifecycle import Readiness
from gateway.protocol.openai import ModelList
from gateway.storage import Database
from gateway.upstream.probes import UpstreamStatus


def _service(request: Request) -> ChatService:
    return cast(ChatService, request.app.state.service)


def _responses(request: Request) -> ResponsesService:
    return cast(ResponsesService, request.app.state.responses)


def _embeddings(request: Request) -> EmbeddingsService:
    return cast(EmbeddingsService, request.app.state.embeddings)


def _keys(request: Request) -> KeyRing:
    return cast(KeyRing, request.app.state.keys)


def _quota(request: Request) -> Quota:
    return cast(Quota, request.app.state.quota)


def _readiness(request: Request) -> Readiness:
    return cast(Readiness, request.app.state.readiness)


def _status(request: Request) -> UpstreamStatus:
    return cast(UpstreamStatus, request.app.state.status)


def _database(request: Request) -> Database | None:
    return cast(Database | None, request.app.state.database)


def _models(request: Request) -> ModelList:
    catalogue = cast(Callable[[], ModelList], request.app.state.catalogue)
    return catalogue()


Service = Annotated[ChatService, Depends(_service)]
Responses = Annotated[ResponsesService, Depends(_responses)]
Embeddings = Annotated[EmbeddingsService, Depends(_embeddings)]
Keys = Annotated[KeyRing, Depends(_keys)]
QuotaDep = Annotated[Quota, Depends(_quota)]
ReadinessDep = Annotated[Readiness, Depends(_readiness)]
StatusDep = Annotated[UpstreamStatus, Depends(_status)]
DatabaseDep = Annotated[Database | None, Depends(_database)]
"""The gateway's database (`gateway.storage.Database`); None when the request log is off."""
Models = Annotated[ModelList, Depends(_models)]
"""The catalogue of `/v1/models`, as of now (`gateway.api.models.catalogue`)."""


def _caller(request: Request, keys: Keys) -> ApiKey | None:
    return keys.authenticate(request.headers)


def _body_caller(request: Request, keys: Keys) -> ApiKey | None:
    state = request.scope.get("state") or {}
    if STATE_KEY in state:
        return cast(ApiKey | None, state[STATE_KEY])
    return keys.authenticate(request.headers)  # an open gateway, or no middleware in front


def limits_of(request: Request) -> Limits:
    """The config's request limits, for code that runs before the route (`gateway.api.body`)."""
    return cast(Limits, request.app.state.limits)


def _admin(request: Request, keys: Keys) -> ApiKey | None:
    return keys.authenticate_admin(request.headers)


def metrics_access(request: Request, keys: Keys) -> None:
    """`/metrics` takes any valid key when `limits.metrics_require_key` is set."""
    keys.authenticate_metrics(request.headers)


Caller = Annotated[ApiKey | None, Depends(_caller)]
"""The caller's key (401 without a valid one; None when the gateway is open)."""
BodyCaller = Annotated[ApiKey | None, Depends(_body_caller)]
"""The caller's key on a route with a body, as the headers said before the body was read."""
Admin = Annotated[ApiKey | None, Depends(_admin)]
"""An admin key (401, or 403 for a key that is not an admin's)."""
