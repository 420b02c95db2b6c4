"""Load and soak: Tiergate under steady load while one upstream dies and comes back.

Two fake upstreams (bench/upstream.py, a fixed model time each) serve the small and the large tier;
the gateway (bench/gateway_server.py, `tiergate serve`'s settings, the bench's instant scorer)
routes a mix of easy and hard prompts, a quarter of them streamed, from a closed loop of
`--concurrency` clients for `--duration` seconds. A third of the way in the small tier's upstream is
killed; at two thirds it is restarted on the same port. While it is down, the breaker should skip it
and the large tier answer, so the goal is 0 failed requests.

Figures: requests sent, answered, failed (by reason); latency p50/p99 overall and while the upstream
was down; the gateway's resident memory after warm-up and at the end (goal: under 10% growth);
request-log rows against requests accepted. `--write` puts them in the `## Reliability` section of
bench/RESULTS.md.

Run: `.venv/bin/python -m bench.soak --duration 600 --write` (about 11 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from bench.procs import Server, free_port
from bench.report import replace_section

ROOT = Path(__file__).resolve().parent.parent
EASY = "What is the capital of France?"
HARD = "HARD: explain how a compiler's register allocator works"


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    down_latencies: list[float] = field(default_factory=list)
    sent: int = 0
    answered: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    served_by: Counter[str] = field(default_factory=Counter)
    down: bool = False


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def gateway_config(small_port: int, large_port: int, backend: str) -> dict[str, object]:
    def deployment(port: int, model: str, price: tuple[float, float]) -> dict[str, object]:
        return {
            "model": f"openai/{model}",
            "api_base": f"http://127.0.0.1:{port}/v1",
            "backend": backend,
            "price": {"input_per_mtok": price[0], "output_per_mtok": price[1]},
            "timeout_s": 10,
            "first_byte_timeout_s": 2,
            "connect_timeout_s": 1,
            "breaker": {"failures": 3, "window_s": 10, "cooldown_s": 2},
        }

    return {
        "deployments": {
            "small-a": deployment(small_port, "small", (0.1, 0.2)),
            "large-a": deployment(large_port, "large", (5.0, 15.0)),
        },
        "tiers": {"small": {"deployments": ["small-a"]}, "large": {"deployments": ["large-a"]}},
        "policies": {"balanced": {"threshold": 0.5}},
        "default_policy": "balanced",
    }


async def one(client: httpx.AsyncClient, i: int, tally: Tally) -> None:
    body: dict[str, object] = {
        "model": "auto",
        "messages": [{"role": "user", "content": HARD if i % 5 == 0 else EASY}],
        "max_tokens": 32,
    }
    stream = i % 4 == 0
    if stream:
        body["stream"] = True
    down = tally.down
    t0 = time.perf_counter()
    tally.sent += 1
    try:
        if stream:
            async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                text = (await r.aread()).decode()
                ok = r.status_code == 200 and '"error"' not in text and "[DONE]" in text
                deployment = r.headers.get("x-tiergate-deployment", "")
                status = r.status_code
        else:
            r = await client.post("/v1/chat/completions", json=body)
            ok, status = r.status_code == 200, r.status_code
            deployment = r.headers.get("x-tiergate-deployment", "")
    except httpx.HTTPError as exc:
        tally.failed[type(exc).__name__] += 1
        return
    elapsed = time.perf_counter() - t0
    if not ok:
        tally.failed[f"status {status}" if status != 200 else "stream error event"] += 1
        return
    tally.answered += 1
    tally.served_by[deployment] += 1
    tally.latencies.append(elapsed)
    if down:
        tally.down_latencies.append(elapsed)


async def load(url: str, concurrency: int, duration_s: float, tally: Tally) -> None:
    deadline = time.monotonic() + duration_s
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                await one(client, next(counter), tally)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def chaos(small: Server, duration_s: float, tally: Tally, events: list[str]) -> None:
    t0 = time.monotonic()
    await asyncio.sleep(duration_s / 3)
    small.stop()
    tally.down = True
    events.append(f"small upstream killed at {time.monotonic() - t0:.0f}s")
    await asyncio.sleep(duration_s / 3)
    await asyncio.to_thread(small.start)
    tally.down = False
    events.append(f"small upstream restarted at {time.monotonic() - t0:.0f}s")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="upstream model time")
    parser.add_argument("--backend", default="openai-compatible")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args(argv)
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="tiergate-soak-"))
    ports = {"small": free_port(), "large": free_port(), "gateway": free_port()}

    def upstream(name: str) -> Server:
        port = ports[name]
        return Server(
            name,
            [py, "-m", "bench.upstream", "--port", str(port), "--latency-ms", str(args.latency_ms)],
            f"http://127.0.0.1:{port}/v1/models",
            work / f"{name}.log",
            cwd=ROOT,
        )

    config = work / "tiergate.yaml"
    config.write_text(yaml.safe_dump(gateway_config(ports["small"], ports["large"], args.backend)))
    gateway = Server(
        "gateway",
        [
            py,
            "-m",
            "bench.gateway_server",
            "--config",
            str(config),
            "--port",
            str(ports["gateway"]),
            "--log-dir",
            str(work / "logs"),
        ],
        f"http://127.0.0.1:{ports['gateway']}/health",
        work / "gateway.log",
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        cwd=ROOT,
    )
    small, large = upstream("small").start(), upstream("large").start()
    tally, events = Tally(), list[str]()
    try:
        gateway.start()
        url = f"http://127.0.0.1:{ports['gateway']}"
        warm = Tally()
        asyncio.run(load(url, args.concurrency, 10, warm))
        rss_start = rss_mb(gateway.pid)

        async def run() -> None:
            await asyncio.gather(
                load(url, args.concurrency, args.duration, tally),
                chaos(small, args.duration, tally, events),
            )

        t0 = time.monotonic()
        asyncio.run(run())
        wall = time.monotonic() - t0
        rss_end = rss_mb(gateway.pid)
        status = httpx.get(url + "/status", timeout=10).json()
    finally:
        gateway.stop()
        small.stop()
        large.stop()
    rows = _log_rows(work / "logs")
    accepted = warm.sent + tally.sent - sum(tally.failed.values()) - sum(warm.failed.values())
    figures = {
        "duration_s": round(wall, 1),
        "concurrency": args.concurrency,
        "backend": args.backend,
        "sent": tally.sent,
        "answered": tally.answered,
        "failed": sum(tally.failed.values()),
        "failed_by_reason": dict(tally.failed),
        "served_by": dict(tally.served_by),
        "p50_ms": round(pct(tally.latencies, 0.5), 1),
        "p99_ms": round(pct(tally.latencies, 0.99), 1),
        "down_p50_ms": round(pct(tally.down_latencies, 0.5), 1),
        "down_p99_ms": round(pct(tally.down_latencies, 0.99), 1),
        "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_end, 1),
        "rss_growth_pct": round(100 * (rss_end - rss_start) / rss_start, 1),
        "log_rows": rows,
        "requests_with_a_response": accepted,
        "events": events,
        "small_circuit_at_end": status["tiers"]["small"]["deployments"]["small-a"]["circuit"],
    }
    print(json.dumps(figures, indent=2))
    if args.write:
        _write(figures, " ".join(["python -m bench.soak", *(argv or sys.argv[1:])]))
    return 0 if figures["failed"] == 0 else 1


def _log_rows(log_dir: Path) -> int | None:
    path = log_dir / "requests.db"
    if not path.exists():
        return None
    with sqlite3.connect(path) as conn:
        (n,) = conn.execute("SELECT COUNT(*) FROM requests").fetchone()
    return int(n)


ROWS = (
    ("duration", lambda f: f"{f['duration_s']} s"),
    ("closed-loop clients", lambda f: f["concurrency"]),
    ("requests sent", lambda f: f["sent"]),
    ("answered", lambda f: f["answered"]),
    ("failed", lambda f: f"{f['failed']} {f['failed_by_reason'] or ''}".strip()),
    (
        "served by small-a / large-a",
        lambda f: "{} / {}".format(
            f["served_by"].get("small-a", 0), f["served_by"].get("large-a", 0)
        ),
    ),
    ("latency p50 / p99, whole run", lambda f: f"{f['p50_ms']} / {f['p99_ms']} ms"),
    (
        "latency p50 / p99, small upstream down",
        lambda f: f"{f['down_p50_ms']} / {f['down_p99_ms']} ms",
    ),
    (
        "gateway RSS after warm-up / at end",
        lambda f: f"{f['rss_start_mb']} / {f['rss_end_mb']} MB ({f['rss_growth_pct']:+}%)",
    ),
    (
        "request-log rows / requests answered (incl. warm-up)",
        lambda f: f"{f['log_rows']} / {f['requests_with_a_response']}",
    ),
    ("chaos", lambda f: "; ".join(f["events"])),
    ("small-a circuit at the end", lambda f: f["small_circuit_at_end"]),
)


def _write(figures: dict[str, object], command: str) -> None:
    """Record this run in bench/soak.json (one entry per backend) and rewrite the
    `## Reliability` section of bench/RESULTS.md from it; other sections are not ours."""
    store = ROOT / "bench" / "soak.json"
    runs: dict[str, dict[str, object]] = json.loads(store.read_text()) if store.exists() else {}
    runs[str(figures["backend"])] = {"command": command, "figures": figures}
    store.write_text(json.dumps(runs, indent=2) + "\n")
    backends = sorted(runs)
    head = "| figure | " + " | ".join(f"`{b}` backend" for b in backends) + " |"
    lines = [head, "|---|" + "---|" * len(backends)]
    for label, cell in ROWS:
        values = [str(cell(runs[b]["figures"])) for b in backends]
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    commands = "\n".join(f"- `.venv/bin/{runs[b]['command']}`" for b in backends)
    section = f"""## Reliability

Load and soak with chaos (`bench/soak.py`): two fake upstreams (bench/upstream.py, a fixed
model time per answer: `--latency-ms`, 20 ms by default), the gateway as `tiergate serve` runs it
(the bench's instant scorer; metrics and the SQLite request log on), closed-loop clients sending
`model: auto`, one request in five hard (large tier), one in four streamed. The small tier's only
upstream is killed a third of the way in and restarted at two thirds; breaker: 3 failures in 10 s
open the circuit for 2 s, first-byte timeout 2 s. Goal: 0 failed while one tier is healthy, RSS
growth under 10%, one request-log row per answered request. Machine: 2 shared cores with other
work running, so latencies are indicative.

Commands:
{commands}

{chr(10).join(lines)}

Each fault case on its own (what the client gets, what is recorded, what `/metrics` says) is tested
in `tests/gateway/reliability/test_faults.py`, through both backends.
"""
    replace_section(ROOT / "bench" / "RESULTS.md", "Reliability", section)


if __name__ == "__main__":
    sys.exit(main())
