"""bench/RESULTS.md from one run: machine and versions, the tables, the ratios, the goals.

Each writer of bench/RESULTS.md rewrites only its own `## ` section (replace_section): this one
owns `## Gateway overhead`; bench/soak.py `## Reliability`; bench/router_latency.py `## Router`;
bench/requestlog.py `## Request log: SQLite vs Postgres`; bench/failover.py `## Failover: three
replicas behind HAProxy`; `## What the speed changes bought` is hand-written. "Added" latency is a
system's percentile minus the upstream-alone percentile at the same concurrency and prompt, both
from the same run.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import litellm_proxy
from bench.load import wrk_version
from bench.procs import Server


def machine(
    root: Path, proxy: Server | None, elapsed_s: float, args: argparse.Namespace
) -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = {
        pkg: _version(pkg)
        for pkg in (
            "fastapi",
            "uvicorn",
            "httpx",
            "uvloop",
            "httptools",
            "orjson",
            "pydantic",
            "litellm",
        )
    }
    proxy_version = None
    if proxy is not None:
        proxy_version = litellm_proxy.installed_version(Path(proxy.command[0]).parent)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_avg_end": os.getloadavg(),
        "versions": versions,
        "litellm_proxy": proxy_version,
        "wrk": wrk_version(),
        "duration_s": args.duration,
        "rounds": args.rounds,
        "upstream_latency_ms": args.latency_ms,
        "gateway_set": args.gateway_set,
        "elapsed_s": round(elapsed_s),
    }


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "-"


def write(path: Path, systems: Sequence[Any], cells: Sequence[Any], meta: dict[str, Any]) -> None:
    replace_section(path, "Gateway overhead", render(systems, cells, meta))


def replace_section(path: Path, heading: str, section: str) -> None:
    """Put ``section`` (starting with ``## {heading}``) in place of that section of ``path``.

    The section runs to the next ``## `` heading; a missing one is appended. Other sections are
    left byte for byte as they are. The file is replaced atomically.
    """
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    body = section.rstrip("\n") + "\n\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", flags=re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text.rstrip("\n") + "\n")
    tmp.replace(path)


def _f(x: float, digits: int = 1) -> str:
    return "-" if x != x else f"{x:.{digits}f}"


def render(systems: Sequence[Any], cells: Sequence[Any], meta: dict[str, Any]) -> str:
    labels = {s.key: s.label for s in systems}
    by = {(c.system, c.concurrency, c.prompt_tokens, c.stream): c for c in cells}
    v = meta["versions"]
    out = [
        "## Gateway overhead",
        "",
        "Reproduce with `.venv/bin/python -m bench.run` (about 9 minutes; `make bench` runs it, "
        "then bench/router_latency.py). One fake OpenAI upstream (bench/upstream.py, canned "
        f"answers, {meta['upstream_latency_ms']:g} ms added delay), driven by wrk (one thread, "
        f"closed loop, {meta['duration_s']:g} s per cell, systems in turn cell by cell, the "
        f"whole matrix {meta['rounds']} times; each figure is the median over the rounds, CPU is "
        "over all of them). Tiergate runs as "
        "`tiergate serve` does (uvloop, httptools, no access log, Prometheus metrics and the "
        "SQLite request log on). `model: auto` runs twice: with the shipped trained router "
        "(MiniLM on OpenVINO + logistic regression, in its own gateway process, its embedding "
        "cache off since wrk repeats one prompt), the whole cost of routing; and with the "
        "bench's instant scorer, the routing path without the encoder (the encoder "
        "alone: `## Router`). "
        "LiteLLM's proxy: `litellm --config ... --num_workers 1`, no database, "
        "`LITELLM_LOG=ERROR`.",
        "",
        f"- Machine: {meta['cpu']}, {meta['cores']} cores, Linux {meta['kernel']}, shared with "
        f"other work (load average at the end {meta['load_avg_end'][0]:.1f}): absolute figures "
        "drift between runs, ratios within a run hold better.",
        f"- Python {meta['python']}; fastapi {v['fastapi']}, uvicorn {v['uvicorn']}, httpx "
        f"{v['httpx']}, uvloop {v['uvloop']}, httptools {v['httptools']}, orjson {v['orjson']}, "
        f"pydantic {v['pydantic']}; litellm {v['litellm']} (Tiergate's litellm backend), "
        f"litellm[proxy] {meta['litellm_proxy']} (own venv); {meta['wrk']}.",
        f"- Whole run: {meta['elapsed_s']} s.",
        "",
        "Columns: requests/s; latency p50 and p99 as the client saw it; *added* = minus the "
        "upstream alone at the same level; CPU seconds of the server process per 1,000 requests; "
        "peak RSS of the server process so far (VmHWM).",
        "",
    ]
    levels = sorted({c.concurrency for c in cells if not c.stream})
    prompts = sorted({c.prompt_tokens for c in cells if not c.stream})
    for level in levels:
        out += [f"### Concurrency {level}", "", _header()]
        for tokens in prompts:
            for s in systems:
                cell = by.get((s.key, level, tokens, False))
                if cell is not None:
                    out.append(_row(labels, cell, by.get(("upstream", level, tokens, False))))
        out.append("")
    streams = [c for c in cells if c.stream]
    if streams:
        c0 = streams[0]
        out += [
            f"### Streaming (concurrency {c0.concurrency}, {c0.prompt_tokens}-token prompt, "
            "22 chunks per answer, latency = whole stream)",
            "",
            _header(),
        ]
        for cell in streams:
            out.append(
                _row(labels, cell, by.get(("upstream", c0.concurrency, c0.prompt_tokens, True)))
            )
        out.append("")
    out += _ratios(by, levels, prompts, streams)
    return "\n".join(out) + "\n"


def _header() -> str:
    return (
        "| system | prompt tok | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
        "| CPU s / 1k req | peak RSS MB | errors |\n|---|---|---|---|---|---|---|---|---|---|"
    )


def _row(labels: dict[str, str], cell: Any, base: Any) -> str:
    added50 = cell.p50_ms - base.p50_ms if base and cell.system != "upstream" else float("nan")
    added99 = cell.p99_ms - base.p99_ms if base and cell.system != "upstream" else float("nan")
    return (
        f"| {labels[cell.system]} | {cell.prompt_tokens} | {cell.rps:.0f} | {_f(cell.p50_ms, 2)} "
        f"| {_f(cell.p99_ms, 2)} | {_f(added50, 2)} | {_f(added99, 2)} "
        f"| {_f(cell.cpu_s_per_1k, 2)} | {cell.peak_rss_mb:.0f} | {cell.errors} |"
    )


def _ratios(
    by: dict[Any, Any], levels: list[int], prompts: list[int], streams: list[Any]
) -> list[str]:
    if not any(k[0] == "litellm-proxy" for k in by):
        return []
    out = [
        "### Against LiteLLM's proxy (same run)",
        "",
        "Throughput ratio = Tiergate req/s / proxy req/s; latency ratio = proxy added p50 / "
        "Tiergate added p50 (higher is better for Tiergate in both).",
        "",
        "| concurrency | prompt tok | routing off: req/s x | routing off: added p50 x "
        "| trained router: req/s x | instant scorer: req/s x | litellm backend: req/s x |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = [(lv, t, False) for lv in levels for t in prompts]
    keys += [(c.concurrency, c.prompt_tokens, True) for c in streams[:1]]
    for level, tokens, stream in keys:
        proxy = by.get(("litellm-proxy", level, tokens, stream))
        base = by.get(("upstream", level, tokens, stream))
        if proxy is None or base is None:
            continue
        row = [f"{level}{' (stream)' if stream else ''}", str(tokens)]
        off = by.get(("tiergate-off", level, tokens, stream))
        row.append(_x(off.rps, proxy.rps) if off else "-")
        row.append(_x(proxy.p50_ms - base.p50_ms, off.p50_ms - base.p50_ms) if off else "-")
        for key in ("tiergate-router", "tiergate-auto", "tiergate-litellm"):
            other = by.get((key, level, tokens, stream))
            row.append(_x(other.rps, proxy.rps) if other else "-")
        out.append("| " + " | ".join(row) + " |")
    out += ["", *_goals(by, prompts)]
    return out


def _x(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "-"


def _goals(by: dict[Any, Any], prompts: list[int]) -> list[str]:
    lines = ["Goals (issue 7), routing off:", ""]
    for tokens in prompts:
        off, base = (
            by.get(("tiergate-off", 1, tokens, False)),
            by.get(("upstream", 1, tokens, False)),
        )
        if off and base:
            added = off.p50_ms - base.p50_ms
            verdict = "met" if added <= 3.0 else "NOT met"
            lines.append(
                f"- added p50 at concurrency 1, {tokens} tokens: {added:.2f} ms "
                f"(goal <= 3 ms): {verdict}"
            )
    for tokens in prompts:
        off, proxy = (
            by.get(("tiergate-off", 16, tokens, False)),
            by.get(("litellm-proxy", 16, tokens, False)),
        )
        if off and proxy and proxy.rps > 0:
            ratio = off.rps / proxy.rps
            verdict = "met" if ratio >= 4.0 else "NOT met"
            lines.append(
                f"- req/s at concurrency 16, {tokens} tokens: {ratio:.1f}x the proxy "
                f"(goal >= 4x): {verdict}"
            )
    return [*lines, ""]
