"""Router decision latency on this machine: p50/p99 per call and decisions per second.

Scores prompts of about 32, 128 and 256 MiniLM tokens with the shipped artifact, one request per
call and micro-batched (8, 32, 64 per call, as the gateway batches concurrent requests). A
"decision" is one p_strong: featurise, embed, logistic regression. Run:

    .venv/bin/python bench/router_latency.py [--repeats 50] [--write]

``--write`` replaces the ``## Router`` section of bench/RESULTS.md with the table printed here.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS.md")
SENTENCE = (
    "Write a Python function that parses a CSV file of orders, groups them by customer, "
    "computes each customer's total spend and returns the ten largest, with tests. "
)


def prompt_of(tokens: int, tokenizer: object) -> str:
    """A prompt of about ``tokens`` word pieces (without the special tokens)."""
    words = (SENTENCE * 40).split()
    lo, hi = 1, len(words)
    while lo < hi:  # the longest word prefix that fits
        mid = (lo + hi + 1) // 2
        n = len(tokenizer.tokenize(" ".join(words[:mid])))  # type: ignore[attr-defined]
        lo, hi = (mid, hi) if n <= tokens else (lo, mid - 1)
    return " ".join(words[:lo])


def measure(router: object, prompts: list[str], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of router.score(prompts), after two warm-up calls."""
    for _ in range(2):
        router.score(prompts)  # type: ignore[attr-defined]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        router.score(prompts)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from router import load_router

    router = load_router()
    tokenizer = router.encoder._model.tokenizer  # the bench needs exact token counts
    rows = []
    for tokens in (32, 128, 256):
        text = prompt_of(tokens, tokenizer)
        for batch in (1, 8, 32, 64):
            repeats = max(5, args.repeats // max(1, batch // 8))
            times = measure(router, [text] * batch, repeats)
            p50 = statistics.median(times)
            p99 = float(np.percentile(times, 99))
            rows.append((tokens, batch, p50 * 1000, p99 * 1000, batch / p50, repeats))
            print(
                f"{tokens:>4} tokens  batch {batch:>3}: p50 {p50 * 1000:8.1f} ms  "
                f"p99 {p99 * 1000:8.1f} ms  {batch / p50:7.1f} decisions/s",
                flush=True,
            )
    load = os.getloadavg()[0]
    lines = [
        "## Router",
        "",
        "Decision latency of the shipped router (`router/artifacts/default`, MiniLM-L6 + logistic "
        "regression), CPU only, measured with:",
        "",
        "```bash",
        ".venv/bin/python bench/router_latency.py --write",
        "```",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"torch threads {_torch_threads()}, load average {load:.1f} during the run "
        "(other jobs shared the CPU, so treat the figures as upper bounds). "
        "Latency is per `Router.score` call (one batch); decisions/s = batch size / p50.",
        "",
        "| prompt tokens | batch | p50 ms | p99 ms | decisions/s | calls |",
        "|---|---|---|---|---|---|",
        *[
            f"| {t} | {b} | {p50:.1f} | {p99:.1f} | {dps:.0f} | {n} |"
            for t, b, p50, p99, dps, n in rows
        ],
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if args.write:
        _write_section(section)
    return 0


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _write_section(section: str) -> None:
    """Replace (or append) the ``## Router`` section, leaving every other section as it is."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(r"^## Router\n.*?(?=^## |\Z)", re.S | re.M)
    new = (
        pattern.sub(lambda _: section + "\n", text)
        if pattern.search(text)
        else (text.rstrip("\n") + "\n\n" + section + "\n")
    )
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text(new)
    tmp.replace(RESULTS)


if __name__ == "__main__":
    raise SystemExit(main())
