"""The stream relay's and the lease's own guarantees, without HTTP: `finish` runs exactly once
however a stream ends, including a stream the client never started reading, and the lease gives
its slot back and finishes the record once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway.chat.stream import StreamLease, StreamRelay
from gateway.config import Price
from gateway.reliability.breaker import Breaker
from gateway.reliability.concurrency import Slots
from gateway.upstream.base import UpstreamError
from tests.support.records import Records, open_ledger


class Upstream:
    def __init__(self, fail_after: int | None = None) -> None:
        self.closed = False
        self._fail_after = fail_after

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        try:
            for i in range(3):
                if i == self._fail_after:
                    raise UpstreamError("server_error", "went away")
                yield {"choices": [{"index": 0, "delta": {"content": f"w{i}"}}]}
        finally:
            self.closed = True


def relay(upstream: Upstream) -> StreamRelay:
    return StreamRelay(
        upstream.chunks(), target_name="small-a", client_wants_usage=False, prompt_chars=8
    )


async def test_a_stream_never_read_is_closed_and_reported_once() -> None:
    upstream = Upstream()
    r = relay(upstream)
    await r.open()
    finished: list[bool] = []
    events = r.events(lambda: finished.append(True))
    await r.abandon(lambda: finished.append(True))
    await r.abandon(lambda: finished.append(True))
    assert finished == [True] and upstream.closed
    assert r.client_aborted and r.partial
    await events.aclose()  # a never-started generator: its finally does not run
    assert finished == [True]


async def test_abandon_after_a_whole_stream_does_nothing() -> None:
    upstream = Upstream()
    r = relay(upstream)
    await r.open()
    finished: list[bool] = []
    out = [e async for e in r.events(lambda: finished.append(True))]
    assert out[-1] == b"data: [DONE]\n\n" and len(out) == 4
    await r.abandon(lambda: finished.append(True))
    assert finished == [True] and not r.client_aborted


def deployment() -> tuple[Slots, Breaker]:
    return Slots("small-a", limit=1, max_queue=0, timeout_s=1.0), Breaker(1, 30, 30, name="small-a")


async def lease_for(upstream: Upstream, records: Records) -> tuple[StreamLease, Slots, Breaker]:
    slots, breaker = deployment()
    ledger = open_ledger([records], stream=True)
    r = relay(upstream)
    await r.open()
    slot = await slots.acquire()
    lease = StreamLease(
        r, slot=slot, breaker=breaker, ledger=ledger, price=Price(), upstream_started=0.0
    )
    return lease, slots, breaker


async def test_a_lease_is_released_once_when_its_stream_is_read_to_the_end() -> None:
    records = Records()
    lease, slots, breaker = await lease_for(Upstream(), records)
    assert slots.in_flight == 1
    out = [e async for e in lease.events()]
    assert out[-1] == b"data: [DONE]\n\n"
    assert slots.in_flight == 0 and len(records.items) == 1
    await lease.close()
    lease.release()
    assert slots.in_flight == 0 and len(records.items) == 1
    rec = records.last
    assert rec.status_code == 200 and not rec.partial and rec.completion_tokens == 2
    assert breaker.state == "closed"


async def test_a_lease_never_read_is_released_by_close_as_an_abort() -> None:
    records, upstream = Records(), Upstream()
    lease, slots, _ = await lease_for(upstream, records)
    await lease.close()
    await lease.close()
    assert slots.in_flight == 0 and upstream.closed
    (rec,) = records.items
    assert rec.client_aborted and rec.partial and rec.status_code == 499


async def test_a_client_leaving_mid_stream_releases_at_close() -> None:
    records, upstream = Records(), Upstream()
    lease, slots, breaker = await lease_for(upstream, records)
    events = lease.events()
    await anext(events)
    assert slots.in_flight == 1 and not records.items
    await lease.close()  # what the route does once the response is over
    assert slots.in_flight == 0 and upstream.closed
    (rec,) = records.items
    assert rec.client_aborted and rec.status_code == 499
    assert breaker.state == "closed", "a client leaving says nothing about the deployment"


async def test_a_mid_stream_failure_reaches_the_breaker_and_the_record() -> None:
    records = Records()
    lease, slots, breaker = await lease_for(Upstream(fail_after=1), records)
    out = [e async for e in lease.events()]
    assert b"failed mid-stream (server_error)" in out[-2] and out[-1] == b"data: [DONE]\n\n"
    assert slots.in_flight == 0 and breaker.state == "open"
    (rec,) = records.items
    assert rec.partial and rec.error_kind == "server_error" and rec.status_code == 200
