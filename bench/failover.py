"""The failover proof: three replicas behind HAProxy under load, one SIGKILLed and restarted,
another SIGTERMed (drained). `python -m bench.failover` writes the figures; the test
(tests/deploy/test_failover.py) runs the same scenario, shorter, and asserts on them.

`run` drives the load (bench/fleet_load.py) while a chaos thread kills r1 (SIGKILL: no drain, its
queued log rows die with it), starts it again, and SIGTERMs r2 (the drain: in-flight requests
finish, queued rows are written, exit 0). `analyze` joins three records of the same requests by
their `x-request-id`: what each client saw, which replica HAProxy says answered it (and when), and
the request-log rows in Postgres. `render` writes the `## Failover` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fleet import BUDGET_USD, RPM_LIMIT, Fleet, LbEntry, read_haproxy_log
from bench.fleet_load import Outcome, drive

KILLED, DRAINED = "r1", "r2"


@dataclass(frozen=True)
class Plan:
    duration_s: float = 60.0
    concurrency: int = 32
    kill_at_s: float = 10.0
    restart_at_s: float = 13.0
    term_at_s: float = 30.0


@dataclass
class Events:
    kill_at: float = 0.0
    restart_at: float = 0.0
    restart_ready_s: float = 0.0
    term_at: float = 0.0
    term_exit_code: int | None = None
    drain_s: float = 0.0


async def run(fleet: Fleet, plan: Plan) -> tuple[list[Outcome], Events]:
    events = Events()
    started = time.monotonic()

    async def at(offset_s: float) -> None:
        await asyncio.sleep(max(0.0, started + offset_s - time.monotonic()))

    async def chaos() -> None:
        killed, drained = fleet.replica(KILLED), fleet.replica(DRAINED)
        await at(plan.kill_at_s)
        events.kill_at = time.time()
        await asyncio.to_thread(killed.kill)
        await at(plan.restart_at_s)
        events.restart_at = time.time()
        killed.start()
        events.restart_ready_s = await asyncio.to_thread(fleet.wait_ready, killed)
        await at(plan.term_at_s)
        events.term_at = time.time()
        events.term_exit_code = await asyncio.to_thread(drained.terminate)
        events.drain_s = time.time() - events.term_at

    load = drive(fleet.url, duration_s=plan.duration_s, concurrency=plan.concurrency)
    outcomes, _ = await asyncio.gather(load, chaos())
    return outcomes, events


@dataclass
class Figures:
    sent: Counter[str] = field(default_factory=Counter)
    """Requests sent, by `<key>/<kind>`."""
    results: Counter[str] = field(default_factory=Counter)
    """`<key>/<kind>/<result>[/<status>]`."""
    served: Counter[str] = field(default_factory=Counter)
    """Requests HAProxy logged per replica incarnation (`r1#0`, `r1#1`, ...), `<NOSRV>` if none."""
    retried: int = 0
    redispatched: int = 0
    cut_streams: dict[str, str] = field(default_factory=dict)
    """Streams that ended with an error: request id -> the incarnation that served them."""
    rows: int = 0
    rows_expected: int = 0
    missing: dict[str, str] = field(default_factory=dict)
    """Accepted requests without a row: request id -> incarnation."""
    missing_age_s: list[float] = field(default_factory=list)
    """Per missing row of the killed replica: seconds from the request's end to the kill."""
    duplicates: int = 0
    unknown_rows: int = 0
    rpm_per_minute: dict[int, int] = field(default_factory=dict)
    budget_spent_usd: float = 0.0
    budget_answered: int = 0
    timeouts: int = 0


def analyze(
    outcomes: list[Outcome],
    entries: list[LbEntry],
    rows: list[dict[str, Any]],
    fleet: Fleet,
    events: Events,
) -> Figures:
    fig = Figures()
    sent_ids = {o.request_id for o in outcomes}
    for o in outcomes:
        fig.sent[f"{o.key}/{o.kind}"] += 1
        tail = f"/{o.status}" if o.result == "http_error" else ""
        fig.results[f"{o.key}/{o.kind}/{o.result}{tail}"] += 1
        fig.timeouts += o.result == "timeout"
    by_id: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_id.setdefault(row["request_id"], []).append(row)
    fig.rows = sum(len(v) for v in by_id.values() if v and v[0]["request_id"] in sent_ids)
    fig.unknown_rows = sum(len(v) for k, v in by_id.items() if k not in sent_ids)
    lb = {e.request_id: e for e in entries if e.request_id in sent_ids}
    for o in outcomes:
        if o.result == "cut":
            e = lb.get(o.request_id)
            fig.cut_streams[o.request_id] = _incarnation(fleet, e) if e else "?"
    for e in lb.values():
        where = _incarnation(fleet, e)
        fig.served[where] += 1
        fig.retried += e.retries not in ("0", "+0")
        fig.redispatched += e.retries.startswith("+")
        if e.server == "<NOSRV>" or e.status < 0:
            continue
        fig.rows_expected += 1
        found = len(by_id.get(e.request_id, []))
        if found == 0:
            fig.missing[e.request_id] = where
            if where == f"{KILLED}#0":
                fig.missing_age_s.append(events.kill_at - e.ended_at)
        fig.duplicates += max(0, found - 1)
    minute_counts: Counter[int] = Counter()
    for row in rows:
        if row["api_key_id"] == "rpm" and row["status_code"] == 200:
            minute_counts[int(row["started_at"] // 60)] += 1
        if row["api_key_id"] == "budget":
            fig.budget_spent_usd += row["cost_usd"] or 0.0
            fig.budget_answered += row["status_code"] == 200
    fig.rpm_per_minute = dict(sorted(minute_counts.items()))
    return fig


def _incarnation(fleet: Fleet, entry: LbEntry) -> str:
    if entry.server == "<NOSRV>":
        return "<NOSRV>"
    replica = fleet.replica(entry.server)
    n = replica.incarnation_at(entry.accepted_at)
    return f"{entry.server}#{n if n is not None else '?'}"


def read_rows(database_url: str) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        cur = conn.execute(
            "SELECT request_id, api_key_id, status_code, cost_usd, counterfactual_cost_usd, "
            "served_tier, started_at, stream, partial FROM requests"
        )
        return list(cur.fetchall())


def render(fig: Figures, plan: Plan, events: Events, meta: dict[str, Any]) -> str:
    def count(prefix: str) -> int:
        return sum(v for k, v in fig.results.items() if k.startswith(prefix))

    sent = sum(fig.sent.values())
    rows = [
        ("main key, JSON", "load/json"),
        ("main key, streamed", "load/stream"),
        (f"rpm-limited key ({RPM_LIMIT}/min), JSON", "rpm/json"),
        (f"budget-limited key ({BUDGET_USD} USD/day), JSON", "budget/json"),
    ]
    table = [
        "| requests | sent | answered whole | answered with an error status | cut mid-stream "
        "| failed (no answer) | hung (timeout) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, prefix in rows:
        statuses: Counter[str] = Counter()
        for k, v in fig.results.items():
            if k.startswith(f"{prefix}/http_error"):
                statuses[k.rsplit("/", 1)[1]] += v
        errors = ", ".join(f"{n}x {s}" for s, n in sorted(statuses.items())) or "0"
        table.append(
            f"| {label} | {fig.sent[prefix]} | {count(prefix + '/ok')} | {errors} "
            f"| {count(prefix + '/cut')} | {count(prefix + '/failed')} "
            f"| {count(prefix + '/timeout')} |"
        )
    served = ", ".join(f"{k} {v}" for k, v in sorted(fig.served.items()))
    killed_missing = sum(1 for w in fig.missing.values() if w == f"{KILLED}#0")
    other_missing = len(fig.missing) - killed_missing
    in_flight = sum(1 for age in fig.missing_age_s if age < 0)
    queued = [age for age in fig.missing_age_s if age >= 0]
    queued_text = f", ended {max(queued):.2f} s or less before it" if queued else ""
    rpm_max = max(fig.rpm_per_minute.values(), default=0)
    out = [
        "## Failover: three replicas behind HAProxy",
        "",
        f"Reproduce with `.venv/bin/python -m bench.failover` ({meta['command']}; about "
        f"{int(meta['elapsed_s']) // 60 + 1} minutes). Three `tiergate serve` replicas "
        "(bench/fleet.py) behind HAProxy "
        f"{meta['haproxy']} (health checks on `/ready`; `retry-on conn-failure empty-response "
        "response-timeout 503`, `option redispatch 1`: only what failed before any byte of a "
        "response left a replica, or a replica's 503, is retried), one Redis (rate and budget "
        "counters), one Postgres "
        f"{meta['postgres']} (the request log of all three), one fake upstream (100 ms to the "
        "first byte, streams of 22 events 60 ms apart). Load (bench/fleet_load.py): "
        f"{plan.duration_s:g} s at concurrency {plan.concurrency} on the main key (half streamed, "
        "a quarter `model: auto` through the trained router), plus one client each on an "
        "rpm-limited and a budget-limited key sending faster than their limits. At "
        f"{plan.kill_at_s:g} s r1 is SIGKILLed, at {plan.restart_at_s:g} s started again (ready "
        f"{events.restart_ready_s:.1f} s later), at {plan.term_at_s:g} s r2 is SIGTERMed (drained "
        f"in {events.drain_s:.1f} s, exit code {events.term_exit_code}). Load average "
        "at the end: "
        f"{meta['load_avg_end']:.1f}.",
        "",
        *table,
        "",
        f"- Sent {sent}; HAProxy logged {sum(fig.served.values())} (by replica incarnation: "
        f"{served}); {fig.retried} retried by HAProxy ({fig.redispatched} to another replica), "
        "none of them visible to their clients.",
        f"- Streams cut: {len(fig.cut_streams)}, served by "
        f"{', '.join(sorted(set(fig.cut_streams.values()))) or '-'} (the SIGKILLed r1 is `r1#0`).",
        f"- Request-log rows in Postgres: {fig.rows} for {fig.rows_expected} requests the replicas "
        f"accepted; missing: {killed_missing} from the SIGKILLed r1 ({in_flight} in flight at the "
        f"kill, {len(queued)} finished but still in its queue{queued_text}), {other_missing} from "
        "any other replica; "
        f"{fig.duplicates} duplicate rows, {fig.unknown_rows} rows for ids never sent.",
        f"- rpm limit {RPM_LIMIT} across the three replicas: answered per UTC minute "
        f"{list(fig.rpm_per_minute.values())} (at most {rpm_max}).",
        f"- Budget {BUDGET_USD} USD across the three: spent {fig.budget_spent_usd:.5f} USD on "
        f"{fig.budget_answered} answered requests.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from bench import report
    from bench.postgres import PostgresServer, binaries

    parser = argparse.ArgumentParser(description="Three replicas, one killed, one drained.")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    scale = args.duration / 60.0
    plan = Plan(args.duration, args.concurrency, 10 * scale, 13 * scale, 30 * scale)
    bindir = binaries()
    if bindir is None:
        raise SystemExit("bench: PostgreSQL is not installed (deploy/local/test-prereqs.sh)")
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="tiergate-failover-"))
    pg = PostgresServer(bindir).start()
    try:
        url = pg.database()
        fleet = Fleet(work, url)
        try:
            fleet.start()
            outcomes, events = asyncio.run(run(fleet, plan))
            time.sleep(1.0)  # the surviving replicas' last linger
        finally:
            fleet.stop()
        fig = analyze(outcomes, read_haproxy_log(fleet.haproxy_log), read_rows(url), fleet, events)
        version = _pg_version(url)
    finally:
        pg.stop()
    meta = {
        "command": " ".join(
            ["--duration", f"{args.duration:g}", "--concurrency", str(args.concurrency)]
        ),
        "elapsed_s": time.time() - started,
        "load_avg_end": os.getloadavg()[0],
        "haproxy": _haproxy_version(),
        "postgres": version,
    }
    section = render(fig, plan, events, meta)
    print(section)
    print(f"bench: logs in {work}", file=sys.stderr)
    if not args.no_write:
        report.replace_section(args.results, "Failover: three replicas behind HAProxy", section)
    return 0


def _pg_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


def _haproxy_version() -> str:
    import shutil
    import subprocess

    binary = shutil.which("haproxy")
    if binary is None:
        return "?"
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stdout
    return out.split()[2] if len(out.split()) > 2 else "?"


if __name__ == "__main__":
    raise SystemExit(main())
