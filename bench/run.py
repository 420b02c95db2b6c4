"""The gateway benchmark, in one command: `.venv/bin/python -m bench.run` (or `make bench`).

In one session, against one fast fake upstream (bench/upstream.py), it drives with wrk: the
upstream alone; Tiergate with routing off (a deployment name, direct backend); Tiergate with
`model: "auto"` and the shipped trained router (MiniLM + logistic regression, the whole routing
cost); the same with the bench's instant scorer (the routing path without the encoder);
Tiergate with routing off through its litellm backend; and LiteLLM's proxy (one worker, no
database). Every system meets the same
concurrency levels and prompts, cell by cell in turn, so load from other work on the machine falls
on all of them alike; ratios are taken within the run. Results go to bench/results.json and the
`## Gateway overhead` section of bench/RESULTS.md (the other sections are left as they are).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import yaml

from bench import litellm_proxy, report
from bench.load import LoadResult, run_wrk
from bench.procs import Server, cpu_seconds, free_port, peak_rss_mb
from bench.prompts import prompt

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LEVELS = (1, 16, 64)
PROMPT_TOKENS = (32, 128, 256)
KEY = litellm_proxy.MASTER_KEY
STREAM_CELL = (16, 128)
"""(concurrency, prompt tokens) of the streaming comparison."""


@dataclass(frozen=True)
class System:
    key: str
    label: str
    server: str
    """Which running server answers (its CPU and memory are this system's)."""
    url: str
    model: str
    prompts: tuple[int, ...] = PROMPT_TOKENS
    """Prompt sizes to run (the litellm backend only at 128 tokens, to keep the run short)."""


@dataclass
class Cell:
    system: str
    concurrency: int
    prompt_tokens: int
    stream: bool
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_s_per_1k: float
    peak_rss_mb: float
    rounds: int = 1


def tiergate_config(upstream: str, backend: str) -> dict[str, object]:
    deployment = {
        "model": "openai/bench-model",
        "api_base": upstream,
        "backend": backend,
        "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.2},
    }
    return {
        "deployments": {"bench-small": deployment, "bench-large": deployment},
        "tiers": {
            "small": {"deployments": ["bench-small"]},
            "large": {"deployments": ["bench-large"]},
        },
        "policies": {"balanced": {"threshold": 0.5}},
        "default_policy": "balanced",
    }


def tiergate_server(
    name: str,
    upstream: str,
    backend: str,
    work: Path,
    extra: list[str],
    env: dict[str, str] | None = None,
) -> Server:
    port = free_port()
    config = work / f"{name}.yaml"
    config.write_text(yaml.safe_dump(tiergate_config(upstream, backend)))
    command = [PYTHON, "-m", "bench.gateway_server", "--config", str(config), "--port", str(port)]
    command += ["--log-dir", str(work / f"{name}-logs"), *extra]
    ready = f"http://127.0.0.1:{port}/health"
    return Server(name, command, ready, work / f"{name}.log", env=env or {}, cwd=ROOT)


def body(model: str, tokens: int, stream: bool) -> bytes:
    payload: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt(tokens)}],
        "max_tokens": 32,
    }
    if stream:
        payload["stream"] = True
    return orjson.dumps(payload)


def plan(systems: list[System]) -> list[tuple[System, int, int, bool]]:
    """One round: every level and prompt, every system in turn within each (level, prompt)."""
    cells = [
        (s, c, tokens, False)
        for c in LEVELS
        for tokens in PROMPT_TOKENS
        for s in systems
        if tokens in s.prompts
    ]
    c, tokens = STREAM_CELL
    return cells + [(s, c, tokens, True) for s in systems]


def combine(runs: list[Cell]) -> Cell:
    """Several rounds of one cell: medians of rate and percentiles, CPU over all requests."""
    first, n = runs[0], sum(r.requests for r in runs)
    cpu = sum(r.cpu_s_per_1k * r.requests / 1000 for r in runs if r.requests)
    return Cell(
        first.system,
        first.concurrency,
        first.prompt_tokens,
        first.stream,
        n,
        statistics.median(r.rps for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.errors for r in runs),
        cpu / n * 1000 if n else float("nan"),
        max(r.peak_rss_mb for r in runs),
        len(runs),
    )


def settle(server: Server, limit_s: float = 5.0) -> None:
    """Wait until `server` is idle: wrk abandons requests still in flight when it stops, and a
    slow server's leftover work must not run during the next system's measurement."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_seconds(server.pid)
        time.sleep(0.1)
        if cpu_seconds(server.pid) - before < 0.01:
            return


def measure(system: System, server: Server, c: int, tokens: int, stream: bool, secs: float) -> Cell:
    settle(server)
    cpu0 = cpu_seconds(server.pid)
    result: LoadResult = run_wrk(
        system.url, body(system.model, tokens, stream), concurrency=c, duration_s=secs, key=KEY
    )
    cpu = cpu_seconds(server.pid) - cpu0
    per_1k = cpu / result.requests * 1000 if result.requests else float("nan")
    cell = Cell(
        system.key,
        c,
        tokens,
        stream,
        result.requests,
        result.rps,
        result.p50_ms,
        result.p99_ms,
        result.socket_errors + result.bad_status,
        per_1k,
        peak_rss_mb(server.pid),
    )
    flag = "" if result.ok else f"  ERRORS {cell.errors}"
    print(
        f"  {system.key:<18} c={c:<3} {tokens:>3} tok{' stream' if stream else ''}: "
        f"{cell.rps:8.1f} req/s  p50 {cell.p50_ms:7.2f} ms  p99 {cell.p99_ms:7.2f} ms  "
        f"cpu {per_1k:6.2f} s/1k{flag}",
        file=sys.stderr,
    )
    return cell


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Gateway overhead against LiteLLM's proxy.")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per cell and round")
    parser.add_argument("--rounds", type=int, default=3, help="times through the whole matrix")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="upstream's fixed delay")
    parser.add_argument("--skip-litellm-proxy", action="store_true")
    parser.add_argument("--only", nargs="*", help="system keys to run (default: all)")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument(
        "--gateway-set", action="append", default=[], help="uvicorn option for Tiergate (k=v)"
    )
    args = parser.parse_args(argv)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="tiergate-bench-"))
    extra = [f"--set={kv}" for kv in args.gateway_set]
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    servers: dict[str, Server] = {
        "upstream": Server(
            "upstream",
            [
                PYTHON,
                "-m",
                "bench.upstream",
                "--port",
                str(up_port),
                "--latency-ms",
                str(args.latency_ms),
            ],
            f"{upstream}/models",
            work / "upstream.log",
            cwd=ROOT,
        ),
        "tiergate": tiergate_server("tiergate", upstream, "openai-compatible", work, extra),
        # wrk repeats one prompt: without the embedding cache every request runs the encoder.
        "tiergate-router": tiergate_server(
            "tiergate-router",
            upstream,
            "openai-compatible",
            work,
            [*extra, "--scorer=router"],
            env={"TIERGATE_ROUTER_CACHE_SIZE": "0"},
        ),
        "tiergate-litellm": tiergate_server("tiergate-litellm", upstream, "litellm", work, extra),
    }
    if not args.skip_litellm_proxy:
        bin_dir = litellm_proxy.ensure_venv(ROOT)
        servers["litellm-proxy"] = litellm_proxy.proxy_server(bin_dir, upstream, free_port(), work)

    def url(name: str) -> str:
        return servers[name].ready_url.rsplit("/", 1)[0].replace("/health", "")

    systems = [
        System(
            "upstream", "upstream alone", "upstream", f"{upstream}/chat/completions", "bench-model"
        ),
        System(
            "tiergate-off",
            "Tiergate, routing off",
            "tiergate",
            f"{url('tiergate')}/v1/chat/completions",
            "bench-small",
        ),
        System(
            "tiergate-router",
            "Tiergate, model auto (trained router)",
            "tiergate-router",
            f"{url('tiergate-router')}/v1/chat/completions",
            "auto",
        ),
        System(
            "tiergate-auto",
            "Tiergate, model auto (instant scorer)",
            "tiergate",
            f"{url('tiergate')}/v1/chat/completions",
            "auto",
        ),
        System(
            "tiergate-litellm",
            "Tiergate, litellm backend",
            "tiergate-litellm",
            f"{url('tiergate-litellm')}/v1/chat/completions",
            "bench-small",
            prompts=(128,),
        ),
    ]
    if "litellm-proxy" in servers:
        proxy_root = servers["litellm-proxy"].ready_url.split("/health")[0]
        systems.append(
            System(
                "litellm-proxy",
                "LiteLLM proxy",
                "litellm-proxy",
                f"{proxy_root}/v1/chat/completions",
                litellm_proxy.MODEL,
            )
        )
    if args.only:
        systems = [s for s in systems if s.key in args.only or s.key == "upstream"]
    cells: list[Cell] = []
    print(f"bench: {args.rounds} rounds of {len(plan(systems))} cells", file=sys.stderr)
    try:
        for server in servers.values():
            print(f"bench: starting {server.name}", file=sys.stderr)
            server.start()
        print(f"bench: warming up ({work})", file=sys.stderr)
        for s in systems:
            run_wrk(s.url, body(s.model, 128, False), concurrency=16, duration_s=2, key=KEY)
            run_wrk(s.url, body(s.model, 128, True), concurrency=4, duration_s=1, key=KEY)
        runs: dict[tuple[str, int, int, bool], list[Cell]] = {}
        for n in range(args.rounds):
            print(f"bench: round {n + 1} of {args.rounds}", file=sys.stderr)
            for s, c, tokens, stream in plan(systems):
                cell = measure(s, servers[s.server], c, tokens, stream, args.duration)
                runs.setdefault((s.key, c, tokens, stream), []).append(cell)
        cells = [combine(r) for r in runs.values()]
    finally:
        for server in reversed(list(servers.values())):
            server.stop()
    elapsed = time.time() - started
    meta = report.machine(ROOT, servers.get("litellm-proxy"), elapsed, args)
    raw = {
        "cells": [asdict(c) for c in cells],
        "systems": [asdict(s) for s in systems],
        "meta": meta,
    }
    (ROOT / "bench" / "results.json").write_text(json.dumps(raw, indent=1))
    report.write(args.results, systems, cells, meta)
    print(f"bench: done in {elapsed:.0f}s; wrote {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
