"""What the gateway reports about each request once it is over, and who listens.

One `RequestRecord` per accepted request, whatever happened to it (answered, failed upstream,
aborted by the client), written by one module only, the request's ledger (`gateway.chat.ledger`),
which hands it to every `Telemetry` sink: Prometheus metrics, the request log, a test's collector.
Sinks must not block: `record` is called on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class RequestRecord:
    request_id: str
    started_at: float
    """Unix time, seconds."""
    endpoint: str
    """`chat` or `completions`."""
    api_key_id: str | None = None
    policy: str | None = None
    """None when the client named a deployment and routing was bypassed."""
    p_strong: float | None = None
    threshold: float | None = None
    decision_reason: str | None = None
    """The deciding step: `score`, `route:<name>`, `header`, `pii`, `tools`, `context`, `direct`
    ..."""
    intended_tier: str | None = None
    served_tier: str | None = None
    deployment: str | None = None
    fallback_reason: str | None = None
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    cost_usd: float = 0.0
    counterfactual_cost_usd: float = 0.0
    """The same tokens priced at the most capable tier."""
    latency_s: float = 0.0
    ttft_s: float | None = None
    upstream_latency_s: float | None = None
    router_s: float | None = None
    overhead_s: float | None = None
    status_code: int = 200
    error_kind: str | None = None
    client_aborted: bool = False
    partial: bool = False
    # Added by issue 12 (migration 0004): new fields go last, the table's columns keep this order.
    category: str | None = None
    """The operator route the classifier named, `none` when no route was confident; None when
    no routes are configured or routing was bypassed."""
    category_probability: float | None = None
    """The classifier's probability for its best route, confident or not."""
    pii: str | None = None
    """Kinds of personal data found (`email,phone`), never the data; None: none found or the
    policy does not look."""


class Telemetry(Protocol):
    def request_started(self) -> None: ...

    def record(self, rec: RequestRecord) -> None: ...

    async def aclose(self) -> None: ...


class NullTelemetry:
    """Records nothing; the default until a sink is configured."""

    def request_started(self) -> None:
        return None

    def record(self, rec: RequestRecord) -> None:
        return None

    async def aclose(self) -> None:
        return None
