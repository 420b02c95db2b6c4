"""What escalation mode costs in latency: the same request under a plain policy and under one
that escalates, answers kept and answers escalated, JSON and streamed.

Two fast fake upstreams (bench/upstream.py) stand in for the tiers with model-like timing: the
small one answers after `--small-ms` and paces its stream's events `--small-chunk-ms` apart, the
large one after `--large-ms`, `--large-chunk-ms` apart; a JSON answer takes as long as the whole
stream would (a model generates the whole answer either way). One Tiergate
(bench/gateway_server.py, the bench's instant scorer: every prompt here goes to the small tier)
with two policies: `plain` (threshold 0.5) and `verified` (the same, plus
`escalate: {to: large, checks: [json_schema]}`).
A request asking for `response_format: json_object` fails the check (the fake answers prose) and
escalates; the same request without it passes and keeps the small answer. Requests go one at a
time; cells run interleaved, round after round, so drift on the shared machine touches each alike.

What it shows: a kept JSON answer costs only the checks; a kept stream's first byte waits for the
small tier's whole answer (the answer is held back until checked), so its time to first token
becomes the small tier's whole generation time; an escalated answer costs the small tier's
whole answer plus the large tier's. Writes the `## Escalation latency` section of RESULTS.md.

Run: `python -m bench.escalation --rounds 5 --requests 10`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.procs import Server, free_port
from bench.report import replace_section

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
RESULTS = ROOT / "bench" / "RESULTS.md"
PROMPT = "Write one sentence about foxes."


@dataclass(frozen=True)
class Cell:
    name: str
    policy: str
    stream: bool
    json_mode: bool
    """Ask for `json_object`: under `verified`, the small tier's prose fails and escalates."""

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": f"auto:{self.policy}",
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 64,
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body


CELLS = (
    Cell("plain, JSON", "plain", False, False),
    Cell("verified, JSON, kept", "verified", False, False),
    Cell("verified, JSON, escalated", "verified", False, True),
    Cell("plain, streamed", "plain", True, False),
    Cell("verified, streamed, kept", "verified", True, False),
    Cell("verified, streamed, escalated", "verified", True, True),
)


@dataclass(frozen=True)
class Timing:
    total_s: float
    first_s: float
    """Streamed: the first content event (keep-alive comments are not content); JSON: the total."""
    route: str
    escalated: str | None


def config(small: str, large: str) -> dict[str, Any]:
    def deployment(url: str, price: float) -> dict[str, Any]:
        return {
            "model": "openai/bench-model",
            "api_base": url,
            "backend": "openai-compatible",
            "price": {"input_per_mtok": price, "output_per_mtok": price * 4},
        }

    return {
        "deployments": {"bench-small": deployment(small, 0.1), "bench-large": deployment(large, 3)},
        "tiers": {
            "small": {"deployments": ["bench-small"]},
            "large": {"deployments": ["bench-large"]},
        },
        "policies": {
            "plain": {"threshold": 0.5},
            "verified": {
                "threshold": 0.5,
                "escalate": {"to": "large", "checks": ["json_schema"], "verifier": "none"},
            },
        },
        "default_policy": "plain",
    }


def send(client: httpx.Client, cell: Cell) -> Timing:
    start = time.perf_counter()
    if not cell.stream:
        r = client.post("/v1/chat/completions", json=cell.body())
        r.raise_for_status()
        total = time.perf_counter() - start
        return Timing(total, total, r.headers["x-tiergate-route"], _escalated(r.headers))
    first = None
    with client.stream("POST", "/v1/chat/completions", json=cell.body()) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if first is None and line.startswith("data: ") and '"content"' in line:
                first = time.perf_counter() - start
        total = time.perf_counter() - start
        headers = r.headers
    assert first is not None, f"{cell.name}: no content"
    return Timing(total, first, headers.get("x-tiergate-route", "?"), _escalated(headers))


def _escalated(headers: httpx.Headers) -> str | None:
    value = headers.get("x-tiergate-escalated")
    return None if value is None else str(value)


def metric(text: str, name: str) -> float:
    """Sum of a metric family's samples in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10, help="per cell and round")
    parser.add_argument("--small-ms", type=float, default=100)
    parser.add_argument("--small-chunk-ms", type=float, default=10)
    parser.add_argument("--large-ms", type=float, default=300)
    parser.add_argument("--large-chunk-ms", type=float, default=20)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="tiergate-bench-escalation-"))
    small_port, large_port, gw_port = free_port(), free_port(), free_port()
    small_url = f"http://127.0.0.1:{small_port}/v1"
    large_url = f"http://127.0.0.1:{large_port}/v1"
    (work / "tiergate.yaml").write_text(yaml.safe_dump(config(small_url, large_url)))

    def upstream(name: str, port: int, url: str, ms: float, chunk_ms: float) -> Server:
        argv = [PYTHON, "-m", "bench.upstream", "--port", str(port), "--latency-ms", f"{ms:g}",
                "--chunk-delay-ms", f"{chunk_ms:g}", "--json-takes-stream-time"]  # fmt: skip
        return Server(name, argv, f"{url}/models", work / f"{name}.log", cwd=ROOT)

    servers = [
        upstream("small", small_port, small_url, args.small_ms, args.small_chunk_ms),
        upstream("large", large_port, large_url, args.large_ms, args.large_chunk_ms),
        Server(
            "tiergate",
            [PYTHON, "-m", "bench.gateway_server", "--config", str(work / "tiergate.yaml"),
             "--port", str(gw_port), "--log-dir", str(work / "logs")],
            f"http://127.0.0.1:{gw_port}/health",
            work / "tiergate.log",
            cwd=ROOT,
        ),
    ]  # fmt: skip
    runs: dict[str, list[Timing]] = {c.name: [] for c in CELLS}
    base = f"http://127.0.0.1:{gw_port}"
    try:
        for server in servers:
            server.start()
        with httpx.Client(base_url=base, timeout=60) as client:
            for cell in CELLS:  # warm-up: connection pools, first-call imports
                send(client, cell)
            before = client.get("/metrics").text
            for _ in range(args.rounds):
                for cell in CELLS:
                    runs[cell.name] += [send(client, cell) for _ in range(args.requests)]
            after = client.get("/metrics").text
    finally:
        for server in reversed(servers):
            server.stop()
    discarded = {
        kind: metric(after, f'tiergate_escalation_discarded_tokens_total{{kind="{kind}"')
        - metric(before, f'tiergate_escalation_discarded_tokens_total{{kind="{kind}"')
        for kind in ("prompt", "completion")
    }
    escalations = metric(after, "tiergate_escalations_total{") - metric(
        before, "tiergate_escalations_total{"
    )
    section = render(args, runs, discarded, escalations)
    print(section)
    if not args.no_write:
        replace_section(RESULTS, "Escalation latency", section)
        print(f"wrote {RESULTS}")
    return 0


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def render(
    args: argparse.Namespace,
    runs: dict[str, list[Timing]],
    discarded: dict[str, float],
    escalations: float,
) -> str:
    rows = ["| request | served by | p50 first byte ms | p50 total ms | p95 total ms |",
            "|---|---|---|---|---|"]  # fmt: skip
    for cell in CELLS:
        timings = runs[cell.name]
        routes = sorted({t.route + (f" ({t.escalated})" if t.escalated else "") for t in timings})
        first = [t.first_s for t in timings]
        total = [t.total_s for t in timings]
        rows.append(
            f"| {cell.name} | {', '.join(routes)} | {_p(first, 50):.1f} | {_p(total, 50):.1f} "
            f"| {_p(total, 95):.1f} |"
        )

    def p50(name: str, first: bool = False) -> float:
        return _p([t.first_s if first else t.total_s for t in runs[name]], 50)

    kept_json = p50("verified, JSON, kept") - p50("plain, JSON")
    kept_ttft = p50("verified, streamed, kept", True) - p50("plain, streamed", True)
    kept_total = p50("verified, streamed, kept") - p50("plain, streamed")
    esc_json = p50("verified, JSON, escalated") - p50("plain, JSON")
    esc_ttft = p50("verified, streamed, escalated", True) - p50("plain, streamed", True)
    n = args.rounds * args.requests
    per = {k: v / escalations if escalations else float("nan") for k, v in discarded.items()}
    load = os.getloadavg()[0]
    return "\n".join(
        [
            "## Escalation latency",
            "",
            "Written by `bench/escalation.py`:",
            "",
            "```bash",
            f".venv/bin/python -m bench.escalation --rounds {args.rounds} "
            f"--requests {args.requests} --small-ms {args.small_ms:g} "
            f"--small-chunk-ms {args.small_chunk_ms:g} --large-ms {args.large_ms:g} "
            f"--large-chunk-ms {args.large_chunk_ms:g}",
            "```",
            "",
            f"{time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} cores "
            f"({platform.machine()}), load average {load:.1f} at the end. Fake tiers with "
            f"model-like timing: small answers after {args.small_ms:g} ms and streams its events "
            f"{args.small_chunk_ms:g} ms apart, large after {args.large_ms:g} ms, "
            f"{args.large_chunk_ms:g} ms apart; a JSON answer takes as long as its whole stream. "
            "`plain` has no escalation; `verified` escalates "
            "to large on `json_schema` (a `json_object` request answered in prose escalates; "
            f"without `response_format` the small answer is kept). {n} requests per row, one at "
            "a time, rows interleaved.",
            "",
            *rows,
            "",
            f"- Kept, JSON: **{kept_json:+.1f} ms** at p50 against `plain` (the checks and the "
            "held answer's bookkeeping).",
            f"- Kept, streamed: the first byte comes **{kept_ttft:+.1f} ms** later (the small "
            "tier's whole answer is generated and checked before any of it is sent, then replayed "
            f"at once); the whole stream ends {kept_total:+.1f} ms from `plain`'s.",
            f"- Escalated: **{esc_json:+.1f} ms** (JSON) and **{esc_ttft:+.1f} ms** to the first "
            "byte (streamed): the small tier's whole answer, then the large tier's.",
            f"- Tokens spent on discarded answers: {per['prompt']:.0f} prompt + "
            f"{per['completion']:.0f} completion per escalation "
            f"(`tiergate_escalation_discarded_tokens_total` over {escalations:.0f} escalations), "
            "paid at the small tier's price and counted in the request's cost.",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
