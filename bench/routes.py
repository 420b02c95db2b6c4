"""Operator routes: how well the route classifier names routes, and what it adds to a decision.

Quality: the `general` preset and a small fixture config (billing, legal-review, shipping) are
fitted with the real MiniLM, then classify paraphrases written separately from their examples
(tests/router/routes_data/: the preset's development set, its test set written after every choice,
and the fixture's set), each with requests no route should claim. Per route: the share named
correctly at the confidence; "none FPR": the share of unrelated requests given a route. The sweep
shows how the confidence trades the two. With the shared routing data (``--data``), also: the
fixture's routes claimed on AlpacaEval's 569 instructions (none are about billing, contracts or
deliveries) and the preset's categories on MT-bench's 80 first turns, by MT-bench category.

Cost: a decision with routes is ``Router.embed`` + ``Router.score_embedded`` +
``Routes.classify_embedded`` instead of ``Router.score``; the embedding is shared, so what routes
add is ``classify_embedded``. Both paths are timed, interleaved, for one request and for 32, with
the router's embedding cache off so that every call runs the encoder. Run:

    .venv/bin/python -m bench.routes [--data ../shared/data/routing] [--repeats 200] [--write]

``--write`` replaces the ``## Routes`` section of bench/RESULTS.md with what is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.report import replace_section
from bench.router_latency import prompt_of

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
DATA = ROOT / "tests" / "router" / "routes_data"
SETS = (
    ("general preset, test set", "general", "general_test.yaml"),
    ("general preset, development set", "general", "general_dev.yaml"),
    ("fixture config", "fixture", "fixture_paraphrases.yaml"),
)
SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CONFIDENCE = 0.6


def load_sets(encoder: Any, max_length: int, cache: Path) -> tuple[dict[str, Any], list[str]]:
    """The two route classifiers, each fitted from scratch into ``cache`` (the preset's shipped
    fit is not used, so that the fit is timed), and timing lines."""
    from router.route_specs import load_background, parse_routes, routes_from_yaml
    from router.routes import content_key, fit_routes, load_routes, save_model

    configs = {
        "general": parse_routes({"preset": "general"}),
        "fixture": routes_from_yaml(DATA / "fixture_config.yaml"),
    }
    background = load_background()
    routes, notes = {}, []
    for name, specs in configs.items():
        key = content_key(specs, encoder, max_length, background)
        start = time.perf_counter()
        model = fit_routes(specs, encoder, max_length, background, key)
        cold = time.perf_counter() - start
        path = save_model(model, cache)
        assert path is not None
        start = time.perf_counter()
        routes[name] = load_routes(specs, encoder, max_length=max_length, cache=cache)
        warm = time.perf_counter() - start
        texts = sum(len(s.texts()) for s in specs)
        kept, total = (model.training["background"][k] for k in ("kept", "total"))
        notes.append(
            f"{name}: {len(specs)} routes, {texts} route texts + {total} "
            f"background texts; fit {cold:.1f} s (of which importing scikit-learn and the LR fits "
            f"{model.training['fit_seconds']:.2f} s), cache hit {warm * 1000:.0f} ms, "
            f"cache file {path.stat().st_size / 1024:.0f} KiB; temperature "
            f"{model.temperature:.3f}, background kept {kept}"
        )
    return routes, notes


def quality(routes: dict[str, Any]) -> list[str]:
    """Per-route accuracy and none FPR at CONFIDENCE, then the sweep, as Markdown lines."""
    lines: list[str] = []
    sweep_rows = []
    for label, config, file in SETS:
        doc = yaml.safe_load((DATA / file).read_text(encoding="utf-8"))
        classifier = routes[config]
        probs: dict[str, list[tuple[str, float]]] = {}
        for route, texts in doc.items():
            probs[route] = [(m.best, m.probability) for m in classifier.classify(texts)]
        lines += [f"**{label}** (`{file}`), at confidence {CONFIDENCE}:", ""]
        lines += ["| route | right | share |", "|---|---|---|"]
        right_total = n_total = 0
        for route, matches in probs.items():
            if route == "none":
                continue
            right = sum(best == route and p >= CONFIDENCE for best, p in matches)
            right_total += right
            n_total += len(matches)
            lines.append(f"| {route} | {right}/{len(matches)} | {right / len(matches):.0%} |")
        none = probs.get("none", [])
        claimed = sum(p >= CONFIDENCE for _, p in none)
        lines.append(f"| **all routes** | {right_total}/{n_total} | {right_total / n_total:.1%} |")
        lines.append(f"| none FPR | {claimed}/{len(none)} | {claimed / max(len(none), 1):.1%} |")
        lines.append("")
        row = [label]
        for t in SWEEP:
            right = sum(
                best == route and p >= t
                for route, matches in probs.items()
                if route != "none"
                for best, p in matches
            )
            fp = sum(p >= t for _, p in none)
            row.append(f"{right / n_total:.1%} / {fp / max(len(none), 1):.1%}")
        sweep_rows.append(row)
    lines += [
        "Confidence sweep (right route / none FPR):",
        "",
        "| set | " + " | ".join(str(t) for t in SWEEP) + " |",
        "|---|" + "---|" * len(SWEEP),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in sweep_rows]
    return lines


def shared_data_checks(routes: dict[str, Any], data: Path) -> list[str]:
    """Fixture routes claimed on AlpacaEval; preset categories on MT-bench by its category."""
    alpaca = [
        json.loads(line)["instruction"]
        for line in (data / "alpacaeval" / "reference.jsonl").read_text().splitlines()
        if line.strip()
    ]
    matches = routes["fixture"].classify(alpaca)
    claimed = Counter(m.category for m in matches if m.category)
    lines = [
        "",
        f"Fixture routes on AlpacaEval's {len(alpaca)} instructions (none is about billing, "
        f"contracts or deliveries): {sum(claimed.values())} claimed "
        f"({sum(claimed.values()) / len(alpaca):.1%}): "
        + (", ".join(f"{k} {v}" for k, v in claimed.most_common()) or "none"),
    ]
    questions = [
        json.loads(line)
        for line in (data / "routellm" / "mt_bench" / "question.jsonl").read_text().splitlines()
        if line.strip()
    ]
    preset = routes["general"]
    by_category: dict[str, Counter[str]] = {}
    for q, m in zip(questions, preset.classify([q["turns"][0] for q in questions]), strict=True):
        by_category.setdefault(q["category"], Counter())[m.category or "none"] += 1
    lines += [
        "",
        "The preset on MT-bench's 80 first turns (no ground truth: what a reader would expect is "
        "coding -> code, math -> proofs/analysis, extraction -> extraction, the rest mostly none):",
        "",
        "| MT-bench category | preset categories |",
        "|---|---|",
    ]
    for category, counts in sorted(by_category.items()):
        lines.append(
            f"| {category} | " + ", ".join(f"{k} {v}" for k, v in counts.most_common()) + " |"
        )
    return lines


def latency(router: Any, routes: Any, repeats: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    """p50/p99 of today's path, the shared path and classify_embedded alone, per batch size."""
    rows = []
    for tokens in (32, 128):
        text = prompt_of(tokens, router.encoder)
        for batch in (1, 32):
            items = [f"{i} {text}" for i in range(batch)]
            calls = max(10, repeats // (1 if batch == 1 else 8))
            base, shared, added = [], [], []
            embedded = router.embed(items)
            for _ in range(3):  # warm-up
                router.score(items)
                routes.classify_embedded(embedded.vectors)
            for _ in range(calls):
                start = time.perf_counter()
                router.score(items)
                base.append(time.perf_counter() - start)
                start = time.perf_counter()
                e = router.embed(items)
                router.score_embedded(e)
                middle = time.perf_counter()
                routes.classify_embedded(e.vectors)
                end = time.perf_counter()
                shared.append(end - start)
                added.append(end - middle)
            rows.append((tokens, batch, _ms(base), _ms(shared), _ms(added), calls))
    lines = [
        "| prompt tokens | batch | `score` p50 / p99 ms | `embed`+`score_embedded`+"
        "`classify_embedded` p50 / p99 ms | `classify_embedded` p50 / p99 ms | calls |",
        "|---|---|---|---|---|---|",
    ]
    for tokens, batch, b, s, a, calls in rows:
        lines.append(
            f"| {tokens} | {batch} | {b[0]:.2f} / {b[1]:.2f} | {s[0]:.2f} / {s[1]:.2f} "
            f"| {a[0]:.3f} / {a[1]:.3f} | {calls} |"
        )
    return lines, rows


def _ms(times: list[float]) -> tuple[float, float]:
    return statistics.median(times) * 1000, float(np.percentile(times, 99)) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "routing")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from router import load_router

    router = load_router(cache_size=0)  # every call runs the encoder
    max_length = router.artifact.encoder_max_length
    with tempfile.TemporaryDirectory() as tmp:  # a cold cache: the first fit is timed
        routes, fit_notes = load_sets(router.encoder, max_length or 0, Path(tmp))
    lines = [
        "## Routes",
        "",
        "Written by `bench/routes.py`: the operator-route classifier (router/routes.py) on "
        "paraphrases held back from its examples, and the latency it adds to a decision.",
        "",
        "```bash",
        f".venv/bin/python -m bench.routes --data {args.data} --repeats {args.repeats} --write",
        "```",
        "",
        *[f"- {note}" for note in fit_notes],
        "",
        *quality(routes),
    ]
    if (args.data / "alpacaeval").is_dir():
        lines += shared_data_checks(routes, args.data)
    table, rows = latency(router, routes["general"], args.repeats)
    worst = max(r[4][0] for r in rows)
    lines += [
        "",
        f"Latency (`general` preset, 8 routes; router embedding cache off; load average "
        f"{os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} cores):",
        "",
        *table,
        "",
        f"Goal (issue 12): routes add under 1 ms to a decision: largest p50 of "
        f"`classify_embedded` {worst:.3f} ms: {'met' if worst < 1.0 else 'NOT met'}. The "
        "shared path's total includes the same encoder run as `score`; the two differ by noise.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(RESULTS, "Routes", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
