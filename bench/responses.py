"""What the Responses API costs over chat completions: the same deployment, the same prompt, sent as
`POST /v1/chat/completions` and as `POST /v1/responses` (translated to chat completions and back).

One fast fake upstream (bench/upstream.py, chat completions only), one Tiergate with the direct
backend and the bench's instant scorer, wrk at concurrency 1. Cells run interleaved, round after
round, so drift on the shared machine touches every cell alike; each figure is the median over the
rounds. `store: false` cells measure translation alone; the stored cell adds the SQLite write that
precedes every stored response (WAL, synchronous=FULL). The goal: translation adds under 0.5 ms
at p50. Writes its own section of bench/RESULTS.md.

On a machine shared with other work the end-to-end figures move by milliseconds from run to run,
more than translation costs; `translation_cost` therefore also measures the added work itself, in
this process: parsing a Responses request, translating it, building the `response` (and, streamed,
the typed events of a 22-chunk answer), against the same request and answer as chat completions.

Run: `python -m bench.responses --rounds 3 --duration 5`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import timeit
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml

from bench.load import LoadResult, run_wrk, wrk_version
from bench.procs import Server, cpu_seconds, free_port
from bench.prompts import prompt

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
KEY = "none"
START, END = "<!-- responses-bench:start -->", "<!-- responses-bench:end -->"


@dataclass(frozen=True)
class Cell:
    name: str
    path: str
    body: bytes


def cells(tokens: int) -> list[Cell]:
    text = prompt(tokens)
    chat = {"model": "bench-small", "messages": [{"role": "user", "content": text}]}
    responses = {"model": "bench-small", "input": text}
    return [
        Cell("chat completions", "/v1/chat/completions", orjson.dumps({**chat, "max_tokens": 32})),
        Cell(
            "responses, store: false",
            "/v1/responses",
            orjson.dumps({**responses, "max_output_tokens": 32, "store": False}),
        ),
        Cell(
            "responses, stored",
            "/v1/responses",
            orjson.dumps({**responses, "max_output_tokens": 32}),
        ),
        Cell(
            "chat completions, streamed",
            "/v1/chat/completions",
            orjson.dumps({**chat, "max_tokens": 32, "stream": True}),
        ),
        Cell(
            "responses, streamed, store: false",
            "/v1/responses",
            orjson.dumps({**responses, "max_output_tokens": 32, "stream": True, "store": False}),
        ),
    ]


def config(upstream: str) -> dict[str, object]:
    deployment = {
        "model": "openai/bench-model",
        "api_base": upstream,
        "backend": "openai-compatible",
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


def translation_cost(tokens: int, repeat: int = 7, number: int = 2000) -> tuple[float, float]:
    """(JSON, streamed) microseconds of CPU that the Responses API adds to one request, in this
    process: best of `repeat` runs of `number` requests each."""
    from gateway.chat.response_events import ResponseEvents
    from gateway.chat.stream import sse
    from gateway.chat.translate import ResponseShell, response_from_chat, to_chat
    from gateway.chat.wire import upstream_call
    from gateway.protocol.openai import ChatCompletionRequest
    from gateway.protocol.responses import ResponsesRequest, sse_event

    plan = cells(tokens)
    chat_body, responses_body = plan[0].body, plan[1].body
    answer = orjson.loads(_chat_answer())
    chunks = [_chunk(word + " ") for word in ("word " * 20).split()] + [_chunk(None, "stop")]

    def chat() -> None:
        upstream_call("chat", ChatCompletionRequest.model_validate_json(chat_body))
        orjson.dumps(answer)

    def responses() -> None:
        request = ResponsesRequest.model_validate_json(responses_body)
        upstream_call("chat", to_chat(request).chat)
        orjson.dumps(response_from_chat(ResponseShell(request), answer, 128, 20))

    def chat_stream() -> None:
        for c in chunks:
            sse(c)

    def responses_stream() -> None:
        events = ResponseEvents(ResponseShell(ResponsesRequest.model_validate_json(responses_body)))
        for c in chunks:
            for e in events.chunk(c):
                sse_event(e)
        for e in events.completed(128, 20):
            sse_event(e)

    def best(fn: object) -> float:
        return min(timeit.repeat(fn, repeat=repeat, number=number)) / number * 1e6  # type: ignore[arg-type]

    return best(responses) - best(chat), best(responses_stream) - best(chat_stream)


def _chat_answer() -> bytes:
    from bench.upstream import _chat_body

    return _chat_body()


def _chunk(text: str | None, finish: str | None = None) -> dict[str, object]:
    delta = {"content": text} if text is not None else {}
    return {"id": "c", "object": "chat.completion.chunk", "model": "bench-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128, help="prompt length")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="tiergate-bench-responses-"))
    up_port, gw_port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{up_port}/v1"
    (work / "tiergate.yaml").write_text(yaml.safe_dump(config(upstream_url)))
    upstream = Server(
        "upstream",
        [PYTHON, "-m", "bench.upstream", "--port", str(up_port), "--latency-ms", "0"],
        f"{upstream_url}/models",
        work / "upstream.log",
        cwd=ROOT,
    )
    gateway = Server(
        "tiergate",
        [PYTHON, "-m", "bench.gateway_server", "--config", str(work / "tiergate.yaml"),
         "--port", str(gw_port), "--log-dir", str(work / "logs")],
        f"http://127.0.0.1:{gw_port}/health",
        work / "tiergate.log",
        cwd=ROOT,
    )  # fmt: skip
    plan = cells(args.tokens)
    runs: dict[str, list[tuple[LoadResult, float]]] = {c.name: [] for c in plan}
    try:
        upstream.start()
        gateway.start()
        base = f"http://127.0.0.1:{gw_port}"
        for c in plan:  # warm-up: connection pools, first-call imports
            run_wrk(base + c.path, c.body, concurrency=1, duration_s=1, key=KEY)
        for _ in range(args.rounds):
            for c in plan:
                cpu = cpu_seconds(gateway.pid)
                result = run_wrk(
                    base + c.path, c.body, concurrency=1, duration_s=args.duration, key=KEY
                )
                if not result.ok:
                    raise SystemExit(f"{c.name}: {result}; see {work}")
                per_1k = (cpu_seconds(gateway.pid) - cpu) / result.requests * 1000
                runs[c.name].append((result, per_1k))
    finally:
        gateway.stop()
        upstream.stop()
    section = render(plan, runs, args, translation_cost(args.tokens))
    print(section)
    if not args.no_write:
        write(args.results, section)
    return 0


def render(
    plan: list[Cell],
    runs: dict[str, list[tuple[LoadResult, float]]],
    args: argparse.Namespace,
    cost: tuple[float, float],
) -> str:
    def p50(name: str) -> float:
        return statistics.median(r.p50_ms for r, _ in runs[name])

    rows = []
    for c in plan:
        results = runs[c.name]
        p99 = statistics.median(r.p99_ms for r, _ in results)
        rows.append(
            f"| {c.name} | {p50(c.name):.3f} | {p99:.3f} "
            f"| {statistics.median(r.rps for r, _ in results):.0f} "
            f"| {statistics.median(cpu for _, cpu in results):.2f} |"
        )
    added = p50("responses, store: false") - p50("chat completions")
    stored = p50("responses, stored") - p50("chat completions")
    streamed = p50("responses, streamed, store: false") - p50("chat completions, streamed")
    command = (
        f"python -m bench.responses --rounds {args.rounds} --duration {args.duration:g} "
        f"--tokens {args.tokens}"
    )
    load = os.getloadavg()[0]
    return "\n".join(
        [
            START,
            "## Responses API",
            "",
            f"`{command}` ({time.strftime('%Y-%m-%d')}, {wrk_version()}, load average "
            f"{load:.1f} on {os.cpu_count()} cores at the end, concurrency 1, "
            f"{args.tokens}-token prompt, one deployment on the direct backend, the instant "
            "scorer, a fake upstream that answers at once; medians over the rounds). The same "
            "request as chat completions and as the Responses API, translated to chat "
            "completions and back.",
            "",
            "| request | p50 ms | p99 ms | req/s | gateway CPU s per 1k |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"End to end, the Responses API measured {added:+.3f} ms at p50 against chat "
            f"completions ({streamed:+.3f} ms streamed); storing the response (the default, "
            f"`store: true`: one SQLite insert committed with `synchronous=FULL` before the "
            f"answer leaves) {stored:+.3f} ms. The work translation adds, measured in process "
            f"(best of 7 x 2000): **{cost[0]:.0f} µs** of CPU per JSON request and "
            f"**{cost[1]:.0f} µs** per streamed 22-chunk answer (goal: under 500 µs at p50).",
            END,
        ]
    )


def write(path: Path, section: str) -> None:
    text = path.read_text("utf-8")
    if START in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, "utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
