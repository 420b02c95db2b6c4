"""Router decision latency on this machine, per encoder runtime and precision, and the runtimes'
agreement.

Scores prompts of about 32, 128 and 256 MiniLM tokens with the shipped artifact, one request per
call and micro-batched (8, 32, 64 per call, as the gateway batches concurrent requests), once per
encoder variant (router/encoder.py: OpenVINO in float32, bfloat16 and int8, and
sentence-transformers on torch; ``--variants``), in the same run. A "decision" is one p_strong:
featurise, embed, logistic regression. Then the agreement check: p_strong of OpenVINO float32 and
torch over prompts of the shared routing data (``--data``; a seeded sample of ``--sample``
distinct prompts, 0 = all); the precisions' agreement is bench/encoder_precision.py's. Run:

    .venv/bin/python -m bench.router_latency [--repeats 50] [--variants ...] [--write]

``--write`` replaces the ``## Router`` section of bench/RESULTS.md with the tables printed here.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.ceiling import GFLOP_PER_DECISION
from bench.ceiling import measure as measure_ceiling
from bench.report import replace_section

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
SENTENCE = (
    "Write a Python function that parses a CSV file of orders, groups them by customer, "
    "computes each customer's total spend and returns the ten largest, with tests. "
)
# (runtime, precision): the first is the reference the agreement check compares torch with.
VARIANTS = {
    "openvino-fp32": ("openvino", "fp32"),
    "openvino-bf16": ("openvino", "bf16"),
    "openvino-int8": ("openvino", "int8"),
    "torch": ("torch", "fp32"),
}
TOKENS = (32, 128, 256)
BATCHES = (1, 8, 32, 64)
ROUNDS = 3


def prompt_of(tokens: int, encoder: Any) -> str:
    """A prompt of about ``tokens`` word pieces (without the special tokens)."""
    words = (SENTENCE * 40).split()
    lo, hi = 1, len(words)
    while lo < hi:  # the longest word prefix that fits
        mid = (lo + hi + 1) // 2
        n = encoder.count_tokens(" ".join(words[:mid]))
        lo, hi = (mid, hi) if n <= tokens else (lo, mid - 1)
    return " ".join(words[:lo])


def measure(router: Any, prompts: list[str], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of router.score(prompts), after a warm-up call."""
    router.score(prompts)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        router.score(prompts)
        times.append(time.perf_counter() - start)
    return times


def latency_rows(routers: dict[str, Any], repeats: int) -> list[tuple[Any, ...]]:
    """(variant, tokens, batch, p50 ms, p99 ms, decisions/s, calls).

    The whole matrix runs ROUNDS times, variants alternating cell by cell, and each figure is
    over the calls of all rounds: a burst of other work on the machine lands on a few calls of
    every cell instead of on all the calls of one.
    """
    encoder = next(iter(routers.values())).encoder
    texts = {tokens: prompt_of(tokens, encoder) for tokens in TOKENS}
    times: dict[tuple[str, int, int], list[float]] = {}
    for round_ in range(ROUNDS):
        print(f"round {round_ + 1} of {ROUNDS}", flush=True)
        for tokens in TOKENS:
            for batch in BATCHES:
                calls = max(2, repeats // max(1, batch // 8) // ROUNDS)
                for variant, router in routers.items():
                    cell = times.setdefault((variant, tokens, batch), [])
                    cell += measure(router, [texts[tokens]] * batch, calls)
    rows = []
    for (variant, tokens, batch), cell in times.items():
        p50, p99 = statistics.median(cell), float(np.percentile(cell, 99))
        rows.append((variant, tokens, batch, p50 * 1000, p99 * 1000, batch / p50, len(cell)))
        print(
            f"{variant:>13} {tokens:>4} tokens  batch {batch:>3}: p50 {p50 * 1000:8.1f} ms"
            f"  p99 {p99 * 1000:8.1f} ms  {batch / p50:7.1f} decisions/s",
            flush=True,
        )
    return rows


def agreement(routers: dict[str, Any], data: Path, sample: int) -> dict[str, Any]:
    """max / mean |p_strong(openvino fp32) - p_strong(torch)| over distinct prompts of ``data``."""
    from router.features import get_feature
    from router.training.sources import load_path

    text_of = get_feature("last_user").text
    assert text_of is not None
    texts = sorted({text_of(e.conversation) for e in load_path(data)})
    total = len(texts)
    if 0 < sample < total:
        texts = random.Random(0).sample(texts, sample)
    scores = {}
    for variant in ("openvino-fp32", "torch"):
        start = time.perf_counter()
        scores[variant] = routers[variant].score(texts)
        print(f"{variant}: {len(texts)} prompts in {time.perf_counter() - start:.0f} s", flush=True)
    diff = np.abs(scores["openvino-fp32"] - scores["torch"])
    return {
        "prompts": len(texts),
        "distinct": total,
        "max": float(diff.max()),
        "mean": float(diff.mean()),
        "over": int((diff > 1e-3).sum()),
    }


def ceiling_lines(rows: list[tuple[Any, ...]], ceiling: dict[str, dict[str, float]]) -> list[str]:
    """How close each OpenVINO precision gets to what its arithmetic allows (bench/ceiling.py)."""
    lines = [
        "",
        "The physical ceiling (`python -m bench.ceiling`, run right after the table): the "
        "matrix-multiply rate OpenVINO sustains on these cores in each arithmetic, over the "
        f"shapes MiniLM multiplies, divided by {GFLOP_PER_DECISION} GFLOP per 128-piece decision:",
        "",
    ]
    for variant in dict.fromkeys(r[0] for r in rows):
        precision = variant.removeprefix("openvino-")
        if precision not in ceiling:
            continue
        best = max(r[5] for r in rows if r[0] == variant and r[1] == 128)
        bound = ceiling[precision]
        lines.append(
            f"- {variant}: {bound['gops']:.0f} GOP/s = at most {bound['decisions_per_s']:.0f} "
            f"decisions/s; measured {best:.0f} batched at 128 tokens, "
            f"{100 * best / bound['decisions_per_s']:.0f}% of it"
        )
    return lines


def render(
    rows: list[tuple[Any, ...]],
    check: dict[str, Any] | None,
    args: Any,
    ceiling: dict[str, dict[str, float]] | None = None,
) -> str:
    by = {(r[0], r[1], r[2]): r for r in rows}
    variants = list(dict.fromkeys(r[0] for r in rows))
    lines = [
        "## Router",
        "",
        "Written by `bench/router_latency.py` (`make bench` runs it after `bench.run`). Decision "
        "latency of the shipped router (`router/artifacts/default`, MiniLM-L6 + logistic "
        "regression), CPU only, for each encoder runtime and precision in the same run (cells "
        f"alternate between them; the matrix {ROUNDS} times, figures over the calls of all "
        "rounds). The precisions' effect on routing decisions: bench/encoder_precision.py.",
        "",
        "```bash",
        f".venv/bin/python -m bench.router_latency --repeats {args.repeats}"
        + (f" --variants {','.join(variants)}" if variants != list(VARIANTS) else "")
        + (f" --sample {args.sample}" if args.sample else "")
        + " --write",
        "```",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"load average {args.load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the "
        f"end of the run. Versions: {_versions()}. Latency is per `Router.score` call (one "
        "batch); decisions/s = batch size / p50.",
        "",
        "| prompt tokens | batch | "
        + " | ".join(f"{v} p50 ms | p99 ms | decisions/s" for v in variants)
        + " |",
        "|---|---|" + "---|---|---|" * len(variants),
    ]
    for tokens in TOKENS:
        for batch in BATCHES:
            cells = [by[(v, tokens, batch)] for v in variants]
            lines.append(
                f"| {tokens} | {batch} | "
                + " | ".join(f"{c[3]:.1f} | {c[4]:.1f} | {c[5]:.0f}" for c in cells)
                + " |"
            )
    lines += ["", "Goals (issue 17), per OpenVINO precision:", ""]
    for v in variants:
        if not v.startswith("openvino"):
            continue
        best = max(by[(v, 128, b)][5] for b in BATCHES)
        figures = [
            ("p50, 32 tokens, one request", by[(v, 32, 1)][3], 5.0, "ms", "<="),
            ("p50, 128 tokens, one request", by[(v, 128, 1)][3], 8.0, "ms", "<="),
            ("decisions/s batched, 128 tokens", best, 200.0, "", ">="),
        ]
        verdicts = []
        for label, value, bound, unit, sense in figures:
            met = value <= bound if sense == "<=" else value >= bound
            verdicts.append(
                f"{label} {value:.1f}{(' ' + unit) if unit else ''} (goal {sense} {bound:g}): "
                + ("met" if met else "NOT met")
            )
        lines.append(f"- {v}: " + "; ".join(verdicts))
    if ceiling:
        lines += ceiling_lines(rows, ceiling)
    if check is not None:
        scope = (
            "every distinct prompt"
            if check["prompts"] == check["distinct"]
            else f"a seeded sample of {check['prompts']:,} of its {check['distinct']:,} prompts"
        )
        lines += [
            "",
            f"Agreement of the runtimes (OpenVINO float32, torch) on the shared routing data "
            f"({scope}): max |p_strong difference| {check['max']:.1e}, mean {check['mean']:.1e}, "
            f"{check['over']} prompts over 1e-3.",
        ]
    return "\n".join(lines) + "\n"


def _versions() -> str:
    from importlib.metadata import version

    names = ("openvino", "nncf", "torch", "sentence-transformers", "transformers")
    return ", ".join(f"{n} {version(n)}" for n in names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "routing")
    parser.add_argument("--sample", type=int, default=0, help="prompts to compare (0 = all)")
    parser.add_argument(
        "--variants",
        type=lambda text: [v.strip() for v in text.split(",") if v.strip()],
        default=list(VARIANTS),
        help=f"comma-separated, of {', '.join(VARIANTS)} (default: all)",
    )
    parser.add_argument("--threads", type=int, default=None, help="encoder threads (default all)")
    parser.add_argument("--no-ceiling", action="store_true", help="skip bench.ceiling's part")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; expected {', '.join(VARIANTS)}")
    args.load_before = os.getloadavg()[0]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from router import load_router

    # No embedding cache: every call here must run the encoder (the prompts repeat).
    routers = {}
    for variant in args.variants:
        runtime, precision = VARIANTS[variant]
        router = load_router(
            runtime=runtime, precision=precision, threads=args.threads, cache_size=0
        )
        got = (router.encoder.runtime, router.encoder.precision)
        assert got == (runtime, precision), f"{variant} unavailable here (got {got})"
        routers[variant] = router
    rows = latency_rows(routers, args.repeats)
    ceiling = None if args.no_ceiling else measure_ceiling(args.threads)
    compare = {"openvino-fp32", "torch"} <= set(routers) and args.data.is_dir()
    check = agreement(routers, args.data, args.sample) if compare else None
    section = render(rows, check, args, ceiling)
    print(section)
    if args.write:
        replace_section(RESULTS, "Router", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
