"""Request records for tests: synthetic ones, a sink that keeps the real ones, a ledger to write
one, the log on disk."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateway.access.counters import MemoryCounters
from gateway.access.quota import Quota
from gateway.chat.ledger import Ledger
from gateway.config import Price
from gateway.telemetry.record import RequestRecord, Telemetry
from gateway.telemetry.requestlog import RequestLog

_ids = itertools.count()


def make_record(**overrides: Any) -> RequestRecord:
    """A routed, answered chat request to the small tier; override what a test is about."""
    base = RequestRecord(
        request_id=f"req-{next(_ids)}",
        started_at=time.time(),
        endpoint="chat",
        api_key_id="key-1",
        policy="balanced",
        p_strong=0.3,
        threshold=0.5,
        decision_reason="score",
        intended_tier="small",
        served_tier="small",
        deployment="smol",
        prompt_tokens=11,
        completion_tokens=7,
        cost_usd=0.0001,
        counterfactual_cost_usd=0.001,
        latency_s=0.2,
        upstream_latency_s=0.19,
        router_s=0.004,
        overhead_s=0.006,
    )
    return replace(base, **overrides)


@dataclass
class Records:
    """A `Telemetry` sink that keeps every record, for assertions on what the gateway reported;
    given to `create_app(sinks=...)`."""

    items: list[RequestRecord] = field(default_factory=list)
    started: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def request_started(self) -> None:
        self.started += 1

    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.items.append(rec)

    async def aclose(self) -> None:
        return None

    def wait(self, n: int, timeout_s: float = 10.0) -> list[RequestRecord]:
        """The first `n` records, once that many have arrived (streams report after their end)."""
        deadline = time.monotonic() + timeout_s
        while len(self.items) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} records, got {len(self.items)}")
            time.sleep(0.01)
        return self.items[:n]

    @property
    def last(self) -> RequestRecord:
        return self.wait(1)[-1] if len(self.items) <= 1 else self.items[-1]


def open_ledger(
    sinks: Sequence[Telemetry],
    *,
    stream: bool = False,
    quota: Quota | None = None,
    large_price: Price | None = None,
) -> Ledger:
    """A request's ledger reporting to `sinks` (quota: in memory, fail-open)."""
    return Ledger(
        sinks,
        quota or Quota(MemoryCounters(), on_error="open"),
        large_price or Price(),
        request_id=None,
        endpoint="chat",
        api_key_id="k",
        stream=stream,
    )


def wait_until(predicate: object, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)


def row_count(db: Path) -> int:
    """Rows in the request log at `db` (0 before it exists)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


async def loop_gaps_while_recording(log: RequestLog, ticks: int, records: int = 500) -> list[float]:
    """Record `records` rows into `log` (one every half millisecond) while a ticker sleeps 5 ms
    `ticks` times: the gaps between its wake-ups. A writer that blocks the event loop shows as
    a gap as long as its write."""
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        for _ in range(ticks):
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def producer() -> None:
        for _ in range(records):
            log.record(make_record())
            await asyncio.sleep(0.0005)

    await asyncio.gather(ticker(), producer())
    return gaps
