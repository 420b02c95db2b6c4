"""The ledger, the one writer of a request's record: the fallback rule, and a finish that reports
and settles exactly once."""

from __future__ import annotations

import hashlib

import pytest

from gateway.access.counters import MemoryCounters
from gateway.access.keys import ApiKey
from gateway.access.quota import Quota
from gateway.chat.ledger import Failures, fallback_reason
from gateway.config import KeySpec, Price
from gateway.protocol.errors import GatewayError
from gateway.upstream.base import Refused, UpstreamError
from policies import Decision
from tests.support.records import Records, open_ledger

BOOM = UpstreamError("server_error", "boom", status=500)
SLOW = UpstreamError("timeout", "slow")
FULL = Refused("at_capacity", "full", retry_after=1)


@pytest.mark.parametrize(
    ("failures", "answered", "reason"),
    [
        ([], True, None),
        ([("a", BOOM)], True, "server_error"),
        ([("a", FULL), ("b", SLOW)], True, "unavailable"),
        ([], False, None),
        ([("a", BOOM)], False, None),  # the only candidate failed: nowhere to fall back to
        ([("a", SLOW), ("b", BOOM)], False, "timeout"),
    ],
)
def test_one_rule_for_the_fallback_reason(
    failures: Failures, answered: bool, reason: str | None
) -> None:
    assert fallback_reason(failures, answered=answered) == reason


async def test_each_fact_lands_in_the_record_and_finish_reports_once() -> None:
    records, store = Records(), MemoryCounters()
    quota = Quota(store, on_error="open")
    key = ApiKey("k", KeySpec(id="k", key_sha256=hashlib.sha256(b"x").hexdigest(), tpm=1000))
    large = Price(input_per_mtok=10, output_per_mtok=30)
    book = open_ledger([records], quota=quota, large_price=large)
    assert records.started == 1 and book.request_id.startswith("req-")
    decision = Decision("balanced", "small", "score", 0.2, 0.5, ("large",))
    book.routed(decision, router_s=0.01)
    ticket = await quota.admit(key, tokens=500, cost_usd=0.0, small_cost_usd=None)
    book.holds(ticket)
    book.served("small-a", "small", [("small-b", BOOM)])
    book.upstream(0.5)
    book.usage(Price(input_per_mtok=1, output_per_mtok=2), 100, 20, estimated=False)
    book.finish()
    book.finish()
    book.failed(GatewayError(500, "too late"))  # after finish: the report is already out
    book.finish()
    await quota.aclose()  # waits for the settlement
    (rec,) = records.items
    assert (rec.policy, rec.p_strong, rec.threshold, rec.router_s) == ("balanced", 0.2, 0.5, 0.01)
    assert (rec.intended_tier, rec.served_tier, rec.deployment) == ("small", "small", "small-a")
    assert rec.fallback_reason == "server_error" and rec.status_code == 200
    assert rec.cost_usd == pytest.approx(100 * 1e-6 + 20 * 2e-6)
    assert rec.counterfactual_cost_usd == pytest.approx(100 * 10e-6 + 20 * 30e-6)
    assert rec.latency_s >= 0 and rec.overhead_s is not None
    assert ticket.tokens_key is not None
    assert await store.get(ticket.tokens_key) == 120, "settled once, to what was used"


def test_an_exhausted_request_keeps_the_upstream_kind_over_the_gateway_code() -> None:
    records = Records()
    book = open_ledger([records])
    book.exhausted([("a", SLOW), ("b", BOOM)])
    book.failed(GatewayError(502, "every deployment failed", code="upstream_server_error"))
    book.finish()
    (rec,) = records.items
    assert (rec.status_code, rec.error_kind) == (502, "server_error")
    assert rec.fallback_reason == "timeout"
    assert rec.overhead_s is None and rec.upstream_latency_s is None


def test_a_broken_sink_costs_no_one_their_record() -> None:
    class Broken:
        def request_started(self) -> None:
            return None

        def record(self, rec: object) -> None:
            raise RuntimeError("disk on fire")

        async def aclose(self) -> None:
            return None

    records = Records()
    book = open_ledger([Broken(), records], stream=True)
    book.aborted()
    book.finish()
    assert records.last.status_code == 499 and records.last.client_aborted
