"""The self-written training set: plainly simple and plainly demanding requests, labelled by hand.

Run ``python -m router.training.self_written [OUT.jsonl]`` to regenerate
``router/trainsets/self_written.jsonl`` byte for byte (a test checks it). Every prompt fragment was
written for Tiergate by the team (no benchmark text) and lives in
``router/trainsets/self_written_parts.yaml``: short requests are listed whole, and requests that
carry a text (rewrite, translate, summarise, extract) join a hand-written task frame to a
hand-written passage, drawn with a fixed seed; arithmetic and word problems fill the templates
below with random numbers. The topics were chosen apart from the common-sense evaluation set
(router/evalsets/common_sense.jsonl), and training checks that no evaluation prompt comes within
cosine 0.9 of a training prompt.

Rows are in the generic outcome format (router/training/data.py): a person's judgement stands in
for the outcomes, ``weak`` = ``strong`` = 1 for a simple request (the small tier serves it) and
``weak`` = 0, ``strong`` = 1 for a demanding one. ``label`` and ``kind`` say which list a row came
from.
"""

from __future__ import annotations

import json
import random
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SOURCE = "tiergate/self-written"
SEED = 20251201


def trainsets_dir() -> Path:
    """``router/trainsets/``: the fragments and the generated set."""
    return Path(str(resources.files("router") / "trainsets"))


@cache
def parts() -> dict[str, Any]:
    """The hand-written fragments, by list name (``passages`` as (text, questions) pairs)."""
    loaded: dict[str, Any] = yaml.safe_load(
        (trainsets_dir() / "self_written_parts.yaml").read_text(encoding="utf-8")
    )
    loaded["passages"] = [(p["text"], list(p["asks"])) for p in loaded["passages"]]
    return loaded


def _simple_text_tasks(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """``n`` (kind, prompt) pairs: a task frame joined to a passage, no pair drawn twice."""
    kinds = {
        "Summ": "summarise",
        "Give me a short": "summarise",
        "TL;DR": "summarise",
        "Transl": "translate",
        "Please translate": "translate",
        "Rewrite": "rewrite",
        "Make this": "rewrite",
        "Fix": "rewrite",
        "Turn": "format",
        "Give this": "rewrite",
        "Is the tone": "classify",
        "Shorten": "rewrite",
        "Extract": "extract",
        "List every": "extract",
        "Read this": "extract",
        "{text}": "extract",
        "Based on": "extract",
    }
    P = parts()
    pairs = [(p, f) for p in range(len(P["passages"])) for f in range(len(P["text_frames"]))]
    rng.shuffle(pairs)
    out = []
    for p, f in pairs[:n]:
        text, asks = P["passages"][p]
        ask = rng.choice(asks)
        frame = P["text_frames"][f]
        kind = next(k for prefix, k in kinds.items() if frame.startswith(prefix))
        prompt = frame.format(text=text, ask=ask, ask_lower=ask[0].lower() + ask[1:])
        out.append((kind, prompt))
    return out


def _arithmetic(rng: random.Random, n: int) -> list[str]:
    """``n`` one-step arithmetic questions with random operands."""
    makers = [
        lambda: f"What is {rng.randint(2, 99)} + {rng.randint(2, 99)}?",
        lambda: f"What's {rng.randint(50, 500)} minus {rng.randint(1, 49)}?",
        lambda: f"Calculate {rng.randint(2, 12)} x {rng.randint(2, 12)}.",
        lambda: f"What is {rng.choice([10, 25, 50, 75])}% of {rng.choice([40, 80, 200, 360])}?",
        lambda: f"Divide {rng.choice([24, 36, 48, 60, 72, 96])} by {rng.choice([2, 3, 4, 6])}.",
        lambda: f"How many seconds are in {rng.randint(2, 9)} minutes?",
        lambda: (
            f"If a notebook costs {rng.randint(2, 6)} dollars, how much do "
            f"{rng.randint(2, 9)} notebooks cost?"
        ),
        lambda: f"What is half of {rng.choice([18, 46, 90, 130, 250])}?",
        lambda: f"Add {rng.randint(100, 900)} and {rng.randint(100, 900)}.",
        lambda: f"How many centimetres are in {rng.randint(2, 9)} metres?",
        # Typed tersely, as people do: "2+2" must read as simple as "2 + 2".
        lambda: f"What is {rng.randint(1, 9)}+{rng.randint(1, 9)}?",
        lambda: f"{rng.randint(2, 20)}*{rng.randint(2, 9)}=?",
        lambda: f"what's {rng.choice([12, 20, 30, 45])}/{rng.choice([3, 5])}",
        lambda: f"{rng.randint(10, 99)} - {rng.randint(1, 9)}",
        lambda: f"What is {rng.randint(2, 9)} squared?",
        lambda: f"Is {rng.randint(2, 50)} bigger than {rng.randint(2, 50)}?",
    ]
    return [makers[i % len(makers)]() for i in range(n)]


def _word_problems(rng: random.Random, n: int) -> list[str]:
    """``n`` multi-step word problems with random numbers: several steps of reasoning each."""
    makers = [
        lambda: (
            f"A bakery sells muffins for {rng.randint(2, 4)} dollars and cookies for 1.50. On "
            f"Monday it sold {rng.randint(20, 60)} muffins and twice as many cookies; on Tuesday "
            "sales of both fell by a third. How much did it take in over the two days?"
        ),
        lambda: (
            f"A tank holds {rng.choice([600, 800, 1200])} litres. One pipe fills it in "
            f"{rng.randint(3, 6)} hours and a drain empties it in {rng.randint(8, 12)} hours. If "
            "both are open and the tank starts a quarter full, how long until it is full?"
        ),
        lambda: (
            f"Maria is {rng.randint(3, 5)} times as old as her son. In {rng.randint(10, 15)} "
            "years she will be twice as old as him. How old are they now?"
        ),
        lambda: (
            f"A shop raises a price by {rng.choice([10, 20, 25])}% and then offers "
            f"{rng.choice([10, 20, 30])}% off the new price. A customer pays "
            f"{rng.randint(40, 90)} dollars. What was the original price, and is the final price "
            "higher or lower than it?"
        ),
        lambda: (
            f"A cyclist rides {rng.randint(20, 40)} km at {rng.randint(15, 20)} km/h, rests for "
            f"{rng.randint(20, 45)} minutes, then rides back at {rng.randint(22, 28)} km/h. What "
            "is her average speed for the whole trip, including the rest?"
        ),
        lambda: (
            f"Three workers paint a fence in {rng.randint(6, 9)} hours. After "
            f"{rng.randint(2, 3)} hours one of them leaves. How long does the whole job take?"
        ),
        lambda: (
            f"A school has {rng.randint(300, 600)} pupils. {rng.randint(40, 60)}% are girls, and "
            f"a quarter of the girls and a fifth of the boys play in the orchestra. How many "
            "pupils play in the orchestra?"
        ),
        lambda: (
            f"Tom saves {rng.randint(15, 30)} dollars a week. His sister starts with "
            f"{rng.randint(100, 200)} dollars and spends {rng.randint(5, 10)} a week. After how "
            "many weeks will Tom have more money than her if he starts with nothing?"
        ),
        lambda: (
            f"A recipe for {rng.randint(4, 6)} people needs 300 g of flour, 2 eggs and 250 ml of "
            f"milk. I am cooking for {rng.randint(9, 14)} people and have only 5 eggs. How much of "
            "each ingredient do I need, and how many more eggs must I buy?"
        ),
        lambda: (
            f"A phone plan costs {rng.randint(10, 20)} dollars a month plus 0.05 per minute over "
            f"{rng.choice([300, 500])} minutes; another costs {rng.randint(25, 35)} with unlimited "
            "minutes. From how many minutes a month is the second plan cheaper?"
        ),
    ]
    return [makers[i % len(makers)]() for i in range(n)]


def rows(seed: int = SEED) -> list[dict[str, object]]:
    """Every training row (a fixed order for a seed): ``prompt``, ``weak``, ``strong``, ``source``,
    ``label`` and ``kind``."""
    rng = random.Random(seed)
    P = parts()
    simple: list[tuple[str, str]] = [
        *(("greeting", p) for p in P["greetings"]),
        *(("thanks", p) for p in P["thanks"]),
        *(("yes_no_fact", p) for p in P["facts"]),
        *(("word", p) for p in P["words"]),
        *(("short_write", p) for p in P["short_writing"]),
        *(("classify", p) for p in P["classify"]),
        *(("format", p) for p in P["format_tasks"]),
        *(("rewrite", p) for p in P["small_text_tasks"]),
        *(("arithmetic", p) for p in _arithmetic(rng, 40)),
        *(("quiz", p) for p in P["quiz"]),
        *(("lookup", p) for p in P["lookups"]),
        *_simple_text_tasks(rng, 90),
    ]
    systems = [
        (
            "system_design",
            P["system_frames"][(i + j) % len(P["system_frames"])].format(system=system),
        )
        for i, system in enumerate(P["systems"])
        for j in range(2)
    ]
    codes = []
    for i, algo in enumerate(P["algorithms"]):
        for j in range(2):
            lang = P["languages"][(2 * i + j) % len(P["languages"])]
            frame = P["code_frames"][(i + j) % len(P["code_frames"])]
            codes.append(("code", frame.format(algo=algo, lang=lang)))
    demanding: list[tuple[str, str]] = [
        *(("proof", p) for p in P["proofs"]),
        *(("maths", p) for p in P["maths"]),
        *systems,
        *codes,
        *(("code", p) for p in P["debugging"]),
        *(("planning", p) for p in P["plans"]),
        *(("analysis", p) for p in P["analyses"]),
        *(("expert_quiz", p) for p in P["expert_quiz"]),
        *(("logic_puzzle", p) for p in P["logic_puzzles"]),
        *(("word_problem", p) for p in _word_problems(rng, 30)),
    ]
    out: list[dict[str, object]] = []
    for label, items, weak in (("simple", simple, 1.0), ("demanding", demanding, 0.0)):
        for kind, prompt in items:
            out.append(
                {
                    "prompt": prompt,
                    "weak": weak,
                    "strong": 1.0,
                    "source": SOURCE,
                    "label": label,
                    "kind": kind,
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the rows as JSONL to the path given (default: router/trainsets/self_written.jsonl)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else trainsets_dir() / "self_written.jsonl"
    lines = [json.dumps(row, ensure_ascii=False) for row in rows()]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} rows to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
