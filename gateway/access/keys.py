"""API keys: who is calling, and what they may use.

Keys come from the config's `keys:` list, each as a SHA-256 digest (`key_sha256`) or the name of an
environment variable holding the key (`key_env`), read once at start and kept only as its digest.
A request's key (`Authorization: Bearer ...` or `x-api-key`) is hashed and compared with every
known digest in constant time (`hmac.compare_digest`), so timing says nothing about how close a
guess was. Without any key configured the gateway is open, and says so at start.

Errors follow OpenAI: 401 `invalid_api_key` for a missing or unknown key, 403 for a key that may not
use the policy or deployment it asked for. Keys and their digests never appear in logs or errors;
the record carries only the key's `id`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import ConfigError, KeySpec
from gateway.protocol.errors import GatewayError

log = logging.getLogger(__name__)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class ApiKey:
    id: str
    spec: KeySpec

    def may_route(self, policy: str) -> bool:
        return self.spec.policies is None or policy in self.spec.policies

    def may_reach(self, deployment: str) -> bool:
        return self.spec.deployments is None or deployment in self.spec.deployments


class KeyRing:
    def __init__(self, keys: list[tuple[bytes, ApiKey]], *, metrics_require_key: bool) -> None:
        self._keys = keys
        self.metrics_require_key = metrics_require_key

    @classmethod
    def from_config(
        cls, specs: tuple[KeySpec, ...], env: Mapping[str, str], *, metrics_require_key: bool
    ) -> KeyRing:
        """Resolve every key now: a `key_env` that is not set fails at start, not at a request."""
        keys: list[tuple[bytes, ApiKey]] = []
        for spec in specs:
            if spec.key_sha256 is not None:
                keys.append((bytes.fromhex(spec.key_sha256), ApiKey(spec.id, spec)))
                continue
            assert spec.key_env is not None
            secret = env.get(spec.key_env)
            if not secret:
                raise ConfigError(f"key {spec.id!r}: {spec.key_env} is not set")
            keys.append((digest(secret), ApiKey(spec.id, spec)))
        return cls(keys, metrics_require_key=metrics_require_key)

    @property
    def open(self) -> bool:
        """True when no key is configured: every request is let in, unidentified."""
        return not self._keys

    def announce(self) -> None:
        if self.open:
            log.warning("no API keys configured: the gateway is open to anyone who can reach it")
        else:
            admins = sum(1 for _, k in self._keys if k.spec.admin)
            log.info("%d API keys configured (%d admin)", len(self._keys), admins)

    def authenticate(self, headers: Mapping[str, str]) -> ApiKey | None:
        """The caller's key; None when the gateway is open. Raises 401 otherwise."""
        if self.open:
            return None
        presented = _presented(headers)
        if presented is None:
            raise GatewayError(
                401,
                "no API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                code="invalid_api_key",
                headers={"www-authenticate": "Bearer"},
            )
        wanted = digest(presented)
        found: ApiKey | None = None
        for known, key in self._keys:  # every one, so the time does not depend on the match
            if hmac.compare_digest(known, wanted):
                found = key
        if found is None:
            raise GatewayError(
                401,
                "incorrect API key provided",
                code="invalid_api_key",
                headers={"www-authenticate": "Bearer"},
            )
        return found

    def authenticate_admin(self, headers: Mapping[str, str]) -> ApiKey | None:
        key = self.authenticate(headers)
        if key is not None and not key.spec.admin:
            raise GatewayError(403, f"key {key.id!r} is not an admin key", code="admin_only")
        return key

    def is_admin(self, headers: Mapping[str, str]) -> bool:
        """Whether the caller presents an admin key (always, on an open gateway); never raises:
        for routes that answer everyone, and admins with more."""
        if self.open:
            return True
        try:
            key = self.authenticate(headers)
        except GatewayError:
            return False
        return key is not None and key.spec.admin

    def find(self, key_id: str) -> ApiKey | None:
        return next((k for _, k in self._keys if k.id == key_id), None)

    def authenticate_metrics(self, headers: Mapping[str, str]) -> None:
        if self.metrics_require_key:
            self.authenticate(headers)


def authorize(key: ApiKey | None, *, policy: str | None, deployment: str | None) -> None:
    """403 unless `key` may route with `policy` (None: a direct request) or reach `deployment`."""
    if key is None:
        return
    if policy is not None and not key.may_route(policy):
        allowed = ", ".join(key.spec.policies or ())
        raise GatewayError(
            403,
            f"key {key.id!r} may not use policy {policy!r}; allowed: {allowed}",
            code="policy_not_allowed",
            param="model",
        )
    if deployment is not None and not key.may_reach(deployment):
        allowed = ", ".join(key.spec.deployments or ())
        raise GatewayError(
            403,
            f"key {key.id!r} may not use deployment {deployment!r}; allowed: {allowed}",
            code="deployment_not_allowed",
            param="model",
        )


def _presented(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        # A key pasted without its scheme is the usual mistake: say what the header must hold.
        what = "an empty 'Bearer'" if scheme.lower() == "bearer" else "no 'Bearer ' prefix"
        raise GatewayError(
            401,
            f"the Authorization header has {what}: expected 'Authorization: Bearer <key>'",
            code="invalid_api_key",
            headers={"www-authenticate": "Bearer"},
        )
    key = headers.get("x-api-key")
    return key.strip() or None if key is not None else None
