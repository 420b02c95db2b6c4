"""Every core: `tiergate serve` as shipped, 1 and 2 workers on 1 and 2 cores, routing on and off,
side by side with LiteLLM's proxy in the same run.

The gateway is the real command (`tiergate serve --config deploy/examples/two-tier.yaml`, the
example config as shipped: `backend: auto`, so its `openai/` deployments take the direct backend;
request log and metrics on) with its trained router, the encoder at its default precision unless
`--precision` says otherwise, and no embedding cache (`TIERGATE_ROUTER_CACHE_SIZE=0`: wrk repeats
one prompt, so without it every routed request runs the encoder). Each server is started under
`taskset -c 0` (one core) and `taskset -c 0,1` (two), the gateway with `--workers 1` and, on two
cores, `--workers 2`; LiteLLM's proxy (one worker, no database, as bench/run.py runs it) under the
same masks. The fake upstream (bench/upstream.py) and wrk are not pinned: on this 2-core machine
they share the cores with the system under test, as a client and a model server on the same host
would. Cells: 128-token prompts, concurrency 1 and 16, routing off (a deployment name) and on
(`model: auto`); every system in turn within each cell, `--rounds` times; medians of rounds.

    .venv/bin/python -m bench.scaling [--rounds 2] [--duration 3] [--precision bf16] [--write]

`--write` replaces the `## Every core` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench import litellm_proxy
from bench.procs import Server, free_port
from bench.report import replace_section
from bench.run import Cell, System, combine, measure

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
EXAMPLE = ROOT / "deploy" / "examples" / "two-tier.yaml"
TOKENS = 128
LEVELS = (1, 16)
MASKS = {"1 core": "0", "2 cores": "0,1"}
GOALS = (
    "routing on, c=16, 128 tokens, no embedding cache: >= 1.2x the proxy's requests/s",
    "routing off: >= 10x the proxy's requests/s, <= 1 ms added p50 at c=1",
)


@dataclass(frozen=True)
class Setup:
    """One server started under one CPU mask."""

    name: str
    cores: str
    workers: int | None
    """Gateway workers; None for the proxy and the upstream."""


def gateway(setup: Setup, upstream: str, work: Path, precision: str | None) -> Server:
    port = free_port()
    env = {
        "TIERGATE_SMALL_API_BASE": upstream,
        "TIERGATE_LARGE_API_BASE": upstream,
        "TIERGATE_ROUTER_CACHE_SIZE": "0",
        "TIERGATE_LOG_DIR": str(work / f"{setup.name}-logs"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    if precision:
        env["TIERGATE_ENCODER_PRECISION"] = precision
    command = ["taskset", "-c", MASKS[setup.cores], PYTHON, "-m", "gateway.cli", "serve"]
    command += ["--config", str(EXAMPLE), "--port", str(port), "--workers", str(setup.workers)]
    ready = f"http://127.0.0.1:{port}/health"
    return Server(setup.name, command, ready, work / f"{setup.name}.log", env=env, cwd=ROOT)


def proxy(setup: Setup, upstream: str, work: Path) -> Server:
    server = litellm_proxy.proxy_server(
        litellm_proxy.ensure_venv(ROOT), upstream, free_port(), work
    )
    server.name = setup.name
    server.command = ["taskset", "-c", MASKS[setup.cores], *server.command]
    return server


def root_of(server: Server) -> str:
    return server.ready_url.split("/health", 1)[0]


def encoder_of(server: Server) -> dict[str, object]:
    """The router's encoder as the gateway reports it on /v1/models."""
    models = httpx.get(f"{root_of(server)}/v1/models", timeout=10).json()["data"]
    for entry in models:
        info = (entry.get("tiergate") or {}).get("router") or {}
        if info:
            return {k: info.get(k) for k in ("encoder_runtime", "encoder_precision")}
    return {}


def systems_of(setup: Setup, server: Server) -> list[System]:
    url = f"{root_of(server)}/v1/chat/completions"
    if setup.workers is None:
        return [System(setup.name, "LiteLLM proxy", setup.name, url, litellm_proxy.MODEL)]
    return [
        System(f"{setup.name}/off", "routing off", setup.name, url, "small-local"),
        System(f"{setup.name}/on", "routing on", setup.name, url, "auto"),
    ]


def run(args: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="tiergate-scaling-"))
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    up = Server(
        "upstream",
        [PYTHON, "-m", "bench.upstream", "--port", str(up_port), "--latency-ms", "0"],
        f"{upstream}/models",
        work / "upstream.log",
        cwd=ROOT,
    )
    up_system = System(
        "upstream", "upstream alone", "upstream", f"{upstream}/chat/completions", "bench-model"
    )
    cells: list[Cell] = []
    encoders: dict[str, object] = {}
    load = {"start": os.getloadavg()}
    up.start()
    try:
        for cores in MASKS:
            setups = [Setup(f"proxy {cores}", cores, None), Setup(f"tiergate 1w {cores}", cores, 1)]
            if cores == "2 cores":
                setups.append(Setup(f"tiergate 2w {cores}", cores, 2))
            servers = {up_system.server: up}
            for s in setups:
                if s.workers is None:
                    servers[s.name] = proxy(s, upstream, work)
                else:
                    servers[s.name] = gateway(s, upstream, work, args.precision)
            try:
                for s in setups:
                    print(f"scaling: starting {s.name}", file=sys.stderr)
                    servers[s.name].start()
                    if s.workers is not None:
                        encoders[s.name] = encoder_of(servers[s.name])
                systems = [up_system] + [x for s in setups for x in systems_of(s, servers[s.name])]
                for system in systems:  # warm-up: the router's first batches, the proxy's caches
                    measure(system, servers[system.server], 16, TOKENS, False, 2)
                runs: dict[tuple[str, int], list[Cell]] = {}
                for n in range(args.rounds):
                    print(f"scaling: {cores}, round {n + 1} of {args.rounds}", file=sys.stderr)
                    for c in LEVELS:
                        for system in systems:
                            cell = measure(
                                system, servers[system.server], c, TOKENS, False, args.duration
                            )
                            cell.system = f"{cores}|{system.key}"
                            runs.setdefault((cell.system, c), []).append(cell)
                cells += [combine(r) for r in runs.values()]
            finally:
                for s in reversed(setups):
                    servers[s.name].stop()
    finally:
        up.stop()
    load["end"] = os.getloadavg()
    return {
        "cells": [asdict(c) for c in cells],
        "encoders": encoders,
        "load": load,
        "rounds": args.rounds,
        "duration": args.duration,
        "precision": args.precision,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def render(result: dict[str, object]) -> str:
    cells = {(c["system"], c["concurrency"]): c for c in result["cells"]}  # type: ignore[attr-defined]
    load = result["load"]
    assert isinstance(load, dict)
    command = ".venv/bin/python -m bench.scaling"
    command += f" --rounds {result['rounds']} --duration {result['duration']:g}"
    if result["precision"]:
        command += f" --precision {result['precision']}"
    lines = [
        "## Every core",
        "",
        "Written by `bench/scaling.py` (`make bench`): `tiergate serve` with the example config as "
        "shipped (`backend: auto`), its trained router with no embedding cache, 1 or 2 workers, "
        "under `taskset -c 0` and `taskset -c 0,1`, against LiteLLM's proxy under the same mask, "
        "128-token prompts. The upstream and wrk are not pinned (they share the two cores). "
        f"Medians of {result['rounds']} rounds of {result['duration']:g} s per cell.",
        "",
        "```bash",
        command + " --write",
        "```",
        "",
        f"Run {result['when']}; load average (1, 5, 15 min) {_load(load['start'])} at the start "
        f"and {_load(load['end'])} at the end (the machine is shared). Encoder as reported by "
        f"`/v1/models`: {json.dumps(result['encoders'])}.",
        "",
        "| cores | system | c | requests/s | p50 ms | p99 ms | errors | vs proxy (req/s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (system, c), cell in cells.items():
        cores, key = system.split("|", 1)
        base = cells.get((f"{cores}|proxy {cores}", c))
        ratio = f"{cell['rps'] / base['rps']:.2f}x" if base and base["rps"] else ""
        lines.append(
            f"| {cores} | {key} | {c} | {cell['rps']:.0f} | {cell['p50_ms']:.2f} | "
            f"{cell['p99_ms']:.2f} | {cell['errors']} | {ratio} |"
        )
    lines += ["", "Goals (issue 17):", ""]
    for cores in MASKS:
        proxy_c16 = cells.get((f"{cores}|proxy {cores}", 16))
        up_c1 = cells.get((f"{cores}|upstream", 1))
        for workers in ("1w", "2w"):
            on = cells.get((f"{cores}|tiergate {workers} {cores}/on", 16))
            off16 = cells.get((f"{cores}|tiergate {workers} {cores}/off", 16))
            off1 = cells.get((f"{cores}|tiergate {workers} {cores}/off", 1))
            if not (on and off16 and off1 and proxy_c16 and up_c1):
                continue
            added = off1["p50_ms"] - up_c1["p50_ms"]
            routed = on["rps"] / proxy_c16["rps"]
            lines.append(
                f"- {cores}, {workers[0]} worker(s): routing on {routed:.2f}x "
                f"the proxy at c=16 (goal >= 1.2x); routing off "
                f"{off16['rps'] / proxy_c16['rps']:.1f}x (goal >= 10x), {added:.2f} ms added p50 "
                "at c=1 over the upstream alone (goal <= 1 ms)"
            )
    return "\n".join(lines) + "\n"


def _load(values: object) -> str:
    assert isinstance(values, (list, tuple))
    return " / ".join(f"{v:.1f}" for v in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per cell and round")
    parser.add_argument("--precision", default=None, help="the encoder's (default: the default)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args(argv)
    result = run(args)
    section = render(result)
    print(section)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.write:
        replace_section(ROOT / "bench" / "RESULTS.md", "Every core", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
