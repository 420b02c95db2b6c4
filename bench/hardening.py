"""Hardening benchmark (issue 13): what attackers and unlucky operators do to a gateway, measured
against `tiergate serve` with its default limits and the shipped trained router.

1. Slow and odd connections: idle ones, headers dribbled a byte every 2 s, a chunked body that
   never ends, a body shorter than its Content-Length (`--connections` of each at once): how long
   the gateway holds each open, and `/health`'s latency meanwhile; then a 64 MB header.
2. A body of 10^6 empty messages (3 MB), with and without a key: the time to its 4xx, and
   `/health`'s latency while it is handled.
3. Six 3.8 MB `model: auto` prompts at once: the gateway's resident memory before and after
   (goal: under 300 MB of growth), and how long a small `auto` request waits meanwhile.
4. SIGTERM with 20 streams in flight (half end within the grace, half never end): streams ended
   cleanly (`[DONE]` received) and request-log rows written (goal: 20 of 20), the exit code.

The upstream is a small streaming fake served here (the bench imports nothing from tests/).
Results go to the `## Hardening` section of bench/RESULTS.md with `--write`.

Run: `python -m bench.hardening [--write]` (about three minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bench.procs import Server, free_port
from bench.report import replace_section

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-bench-hardening-000"
PROMPT_BYTES = 3_800_000
SENTENCE = "Explain how a compiler turns source code into machine instructions, step by step. "


# --- the fake upstream --------------------------------------------------------------------------


def _chunk(text: str | None, finish: str | None = None) -> bytes:
    delta = {"content": text} if text is not None else {}
    payload = {
        "id": "chatcmpl-h",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def _events(endless: bool) -> AsyncIterator[bytes]:
    i = 0
    while endless or i < 10:
        yield _chunk(f"w{i} ")
        i += 1
        await asyncio.sleep(0.05)
    yield _chunk(None, "stop")
    usage = {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    yield b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


async def _chat(request: Request) -> Response:
    body = json.loads(await request.body())
    if body.get("stream"):
        endless = body.get("model") == "endless"
        return StreamingResponse(_events(endless), media_type="text/event-stream")
    return JSONResponse(
        {
            "id": "chatcmpl-h",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
        }
    )


async def _models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": "finite"}, {"id": "endless"}]})


def serve_upstream() -> tuple[uvicorn.Server, str]:
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", _chat, methods=["POST"]),
            Route("/v1/models", _models, methods=["GET"]),
        ]
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}/v1"


def write_config(work: Path, upstream: str) -> Path:
    def deployment(model: str) -> dict[str, Any]:
        return {
            "model": f"openai/{model}",
            "api_base": upstream,
            "backend": "openai-compatible",
            "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.2},
            "timeout_s": 600,
        }

    config = {
        "deployments": {"finite": deployment("finite"), "endless": deployment("endless")},
        "tiers": {"small": {"deployments": ["finite"]}, "large": {"deployments": ["endless"]}},
        "policies": {"balanced": {"threshold": 0.5}},
        "default_policy": "balanced",
        "keys": [{"id": "bench", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest()}],
    }
    path = work / "tiergate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def gateway(work: Path, config: Path, name: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    logs = work / name
    logs.mkdir()
    command = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)]
    return Server(
        name,
        [*command, "--port", str(port)],
        f"http://127.0.0.1:{port}/health",
        logs / "gateway.log",
        env={"TIERGATE_LOG_DIR": str(logs), "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=ROOT,
    )


def root_of(server: Server) -> str:
    return server.ready_url.removesuffix("/health")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- /health while something else happens -------------------------------------------------------


@dataclass
class Probe:
    """`/health` polled every 20 ms in a thread; `latencies` in seconds."""

    url: str
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Probe:
        def run() -> None:
            with httpx.Client(timeout=60) as client:
                while not self._stop.is_set():
                    t0 = time.perf_counter()
                    client.get(self.url + "/health")
                    self.latencies.append(time.perf_counter() - t0)
                    self._stop.wait(0.02)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def summary(self) -> dict[str, float]:
        ms = sorted(x * 1000 for x in self.latencies) or [float("nan")]
        return {
            "p50_ms": round(statistics.median(ms), 1),
            "max_ms": round(ms[-1], 1),
            "samples": len(self.latencies),
        }


# --- 1. slow connections ------------------------------------------------------------------------

SLOW_KINDS = ("idle", "dribbled header", "never-ending body", "short body")


async def _hold(host: str, port: int, kind: str, limit_s: float) -> float:
    """Open one connection of `kind`; seconds until the gateway closed it (`limit_s`: still
    open when the bench stopped waiting)."""
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    auth = f"authorization: Bearer {KEY}\r\n".encode()

    async def feed() -> None:
        try:
            if kind == "dribbled header":
                writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
                while True:
                    writer.write(b"a")
                    await writer.drain()
                    await asyncio.sleep(2)
            elif kind == "never-ending body":
                head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n" + auth
                writer.write(head + b"content-type: application/json\r\n")
                writer.write(b"transfer-encoding: chunked\r\n\r\n")
                while True:
                    writer.write(b"1\r\n \r\n")
                    await writer.drain()
                    await asyncio.sleep(2)
            elif kind == "short body":
                head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n" + auth
                writer.write(head + b"content-type: application/json\r\n")
                writer.write(b"content-length: 1000\r\n\r\n{")
                await writer.drain()
        except (ConnectionError, OSError):
            pass

    feeder = asyncio.create_task(feed())
    try:
        async with asyncio.timeout(limit_s):
            while await reader.read(65536):
                pass
        return time.monotonic() - started
    except TimeoutError:
        return limit_s
    except (ConnectionError, OSError):
        return time.monotonic() - started
    finally:
        feeder.cancel()
        writer.close()


async def _slow(host: str, port: int, each: int, limit_s: float) -> dict[str, list[float]]:
    tasks = {
        kind: [asyncio.create_task(_hold(host, port, kind, limit_s)) for _ in range(each)]
        for kind in SLOW_KINDS
    }
    return {kind: list(await asyncio.gather(*ts)) for kind, ts in tasks.items()}


def slow_connections(server: Server, each: int, limit_s: float) -> dict[str, Any]:
    host, port = root_of(server).removeprefix("http://").split(":")
    with Probe(root_of(server)) as probe:
        held = asyncio.run(_slow(host, int(port), each, limit_s))
    out: dict[str, Any] = {"connections_each": each, "health": probe.summary()}
    for kind, times in held.items():
        still = sum(t >= limit_s for t in times)
        out[kind] = {
            "max_held_s": round(max(times), 1),
            "median_held_s": round(statistics.median(times), 1),
            "open_after_limit": still,
        }
    return out


def big_header(server: Server, mb: int = 64) -> dict[str, Any]:
    host, port = root_of(server).removeprefix("http://").split(":")
    with Probe(root_of(server)) as probe:
        started = time.monotonic()
        status = b""
        with socket.create_connection((host, int(port)), timeout=120) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: ")
            block = b"a" * (1 << 20)
            try:
                for _ in range(mb):
                    sock.sendall(block)
            except OSError:
                pass  # closed by the gateway
            with contextlib.suppress(OSError):
                status = sock.recv(64).split(b"\r\n", 1)[0]
        took = time.monotonic() - started
        time.sleep(0.5)  # /health just after, too
    answer = status.decode()
    return {"mb": mb, "answer": answer, "took_s": round(took, 2), "health": probe.summary()}


# --- 2. a million empty messages ----------------------------------------------------------------


def million_messages(server: Server) -> dict[str, Any]:
    body = b'{"model":"auto","messages":[' + b",".join([b"{}"] * 1_000_000) + b"]}"
    out: dict[str, Any] = {"body_mb": round(len(body) / 1e6, 1)}
    for label, headers in (("without key", {}), ("with key", {"authorization": f"Bearer {KEY}"})):
        with Probe(root_of(server)) as probe:
            time.sleep(0.2)
            started = time.perf_counter()
            r = httpx.post(
                root_of(server) + "/v1/chat/completions",
                content=body,
                headers={"content-type": "application/json", **headers},
                timeout=120,
            )
            took = time.perf_counter() - started
            time.sleep(0.2)
        out[label] = {
            "status": r.status_code,
            "code": r.json()["error"]["code"],
            "answered_s": round(took, 2),
            "health": probe.summary(),
        }
    return out


# --- 3. big auto prompts ------------------------------------------------------------------------


def big_prompts(server: Server, n: int = 6) -> dict[str, Any]:
    url = root_of(server) + "/v1/chat/completions"
    headers = {"authorization": f"Bearer {KEY}"}
    big = SENTENCE * (PROMPT_BYTES // len(SENTENCE))
    small_body = {"model": "auto", "messages": [{"role": "user", "content": "What is 2 + 2?"}]}
    for _ in range(3):  # warm: the router's first batches, the connection pools
        httpx.post(url, json=small_body, headers=headers, timeout=60)
    before = rss_mb(server.pid)
    waits: list[float] = []
    stop = threading.Event()

    def small_requests() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            httpx.post(url, json=small_body, headers=headers, timeout=120)
            waits.append(time.perf_counter() - t0)
            stop.wait(0.05)

    poller = threading.Thread(target=small_requests, daemon=True)
    poller.start()
    started = time.perf_counter()

    def one(i: int) -> int:
        body = {"model": "auto", "messages": [{"role": "user", "content": f"{i} {big}"}]}
        return httpx.post(url, json=body, headers=headers, timeout=300).status_code

    with_threads = [0] * n
    threads = [
        threading.Thread(target=lambda i=i: with_threads.__setitem__(i, one(i))) for i in range(n)
    ]
    for t in threads:
        t.start()
    peak = before
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mb(server.pid))
        time.sleep(0.05)
    took = time.perf_counter() - started
    stop.set()
    poller.join()
    time.sleep(2)
    after = rss_mb(server.pid)
    return {
        "prompts": n,
        "prompt_mb": round(PROMPT_BYTES / 1e6, 1),
        "statuses": sorted(set(with_threads)),
        "all_answered_s": round(took, 2),
        "rss_before_mb": round(before),
        "rss_peak_mb": round(peak),
        "rss_after_mb": round(after),
        "growth_mb": round(after - before),
        "small_auto_max_wait_s": round(max(waits), 2) if waits else None,
    }


# --- 4. SIGTERM with streams in flight ----------------------------------------------------------


def drain(work: Path, config: Path, grace_s: float) -> dict[str, Any]:
    server = gateway(work, config, "drained", {"TIERGATE_DRAIN_GRACE_S": str(grace_s)}).start()
    url = root_of(server) + "/v1/chat/completions"
    results: list[list[str]] = [[] for _ in range(20)]
    started = threading.Barrier(21)

    def stream(i: int) -> None:
        model = "finite" if i % 2 else "endless"
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
        try:
            with httpx.stream(
                "POST", url, json=body, headers={"authorization": f"Bearer {KEY}"}, timeout=120
            ) as r:
                lines = r.iter_lines()
                first = next(lines)
                results[i].append(first)
                started.wait()
                results[i].extend(lines)
        except (httpx.HTTPError, StopIteration) as exc:
            results[i].append(f"client error: {type(exc).__name__}")
            started.abort()

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    started.wait(timeout=60)
    assert server.process is not None
    t0 = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=grace_s + 30)
    code = server.process.wait(timeout=grace_s + 30)
    exited_s = time.monotonic() - t0
    done = [any(line == "data: [DONE]" for line in lines) for lines in results]
    shutting = [any('"shutting_down"' in line for line in lines) for lines in results]
    with sqlite3.connect(work / "drained" / "requests.db") as db:
        rows = db.execute("SELECT count(*) FROM requests").fetchone()[0]
    log = server.log.read_text()
    return {
        "streams": 20,
        "grace_s": grace_s,
        "ended_cleanly": sum(done),
        "ended_by_the_drain": sum(shutting),
        "rows_written": rows,
        "exit_code": code,
        "exited_after_s": round(exited_s, 1),
        "tracebacks_in_log": log.count("Traceback"),
    }


# --- report -------------------------------------------------------------------------------------


def render(figures: dict[str, Any], command: str) -> str:
    slow, header = figures["slow"], figures["header"]
    million, prompts, drained = figures["million"], figures["prompts"], figures["drain"]
    lines = [
        "## Hardening",
        "",
        f"Reproduce with `{command}` (bench/hardening.py, about three minutes): `tiergate serve` "
        "with its default limits (headers 10 s, body 60 s, keep-alive 75 s, headers 32 KiB) and "
        "the shipped trained router, in front of a small streaming fake upstream. The figures "
        "*before the fix* are the ones issue 13 reported for main on this machine.",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores shared with other work (load "
        f"average at the end {os.getloadavg()[0]:.1f}); Python {platform.python_version()}.",
        "",
        f"### Slow and odd connections ({slow['connections_each']} of each at once)",
        "",
        "| connection | held at most | held (median) | still open after "
        f"{figures['limit_s']:g} s | before the fix |",
        "|---|---|---|---|---|",
    ]
    before = "open after 150 s"
    for kind in SLOW_KINDS:
        k = slow[kind]
        lines.append(
            f"| {kind} | {k['max_held_s']} s | {k['median_held_s']} s | {k['open_after_limit']} "
            f"| {before} |"
        )
    lines += [
        "",
        f"`/health` meanwhile: p50 {slow['health']['p50_ms']} ms, max {slow['health']['max_ms']} "
        f"ms. A {header['mb']} MB header: `{header['answer']}` after {header['took_s']} s, "
        f"`/health` meanwhile and just after: max {header['health']['max_ms']} ms (before: 256 MB "
        "was accepted after 66 s; 64 MB stalled `/health` 4 s).",
        "",
        f"### A body of 10^6 empty messages ({million['body_mb']} MB)",
        "",
        "| caller | answer | answered after | `/health` p50 | `/health` max | before the fix |",
        "|---|---|---|---|---|---|",
    ]
    for label in ("without key", "with key"):
        m = million[label]
        lines.append(
            f"| {label} | {m['status']} `{m['code']}` | {m['answered_s']} s | "
            f"{m['health']['p50_ms']} ms | {m['health']['max_ms']} ms | 400 after 5.6-9.4 s, "
            "`/health` waited 5.5 s |"
        )
    lines += [
        "",
        f"### {prompts['prompts']} prompts of {prompts['prompt_mb']} MB, `model: auto`, at once",
        "",
        f"Answered {prompts['statuses']} in {prompts['all_answered_s']} s. Gateway RSS "
        f"{prompts['rss_before_mb']} MB before, {prompts['rss_peak_mb']} MB at the peak, "
        f"{prompts['rss_after_mb']} MB after: **{prompts['growth_mb']:+} MB** (goal: under "
        f"300 MB; before the fix 421 MB -> 2.2 GB, and it stayed). A small `auto` request "
        f"meanwhile waited at most {prompts['small_auto_max_wait_s']} s (before: 20 s).",
        "",
        f"### SIGTERM with {drained['streams']} streams in flight",
        "",
        f"Half of them end within the grace, half never end; TIERGATE_DRAIN_GRACE_S="
        f"{drained['grace_s']:g} here (30 by default). Streams ended cleanly (`[DONE]`): "
        f"**{drained['ended_cleanly']}/{drained['streams']}** ({drained['ended_by_the_drain']} "
        f"by the drain's `shutting_down` event); request-log rows: "
        f"**{drained['rows_written']}/{drained['streams']}**; exit code {drained['exit_code']} "
        f"after {drained['exited_after_s']} s; tracebacks in its log: "
        f"{drained['tracebacks_in_log']} (before: 0/20 ended cleanly, 0 rows, 20 tracebacks).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=100, help="slow ones of each kind")
    parser.add_argument("--grace", type=float, default=3.0, help="drain grace for part 4")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="tiergate-hardening-"))
    upstream, upstream_url = serve_upstream()
    config = write_config(work, upstream_url)
    figures: dict[str, Any] = {"limit_s": 75.0}
    server = gateway(work, config, "main").start()
    try:
        print("hardening: slow connections", file=sys.stderr)
        figures["slow"] = slow_connections(server, args.connections, figures["limit_s"])
        figures["header"] = big_header(server)
        print("hardening: a million messages", file=sys.stderr)
        figures["million"] = million_messages(server)
        print("hardening: big auto prompts", file=sys.stderr)
        figures["prompts"] = big_prompts(server)
    finally:
        server.stop()
    print("hardening: SIGTERM drain", file=sys.stderr)
    figures["drain"] = drain(work, config, args.grace)
    upstream.should_exit = True
    print(json.dumps(figures, indent=1))
    if args.write:
        command = "python -m bench.hardening --write"
        replace_section(args.results, "Hardening", render(figures, command))
        print(f"hardening: wrote {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
