"""The failover proof's load driver: bounded, mixed JSON and streamed requests, each with its own
`x-request-id`, and what each client saw.

`drive` runs `concurrency` workers on the main key until the deadline (half the requests streamed,
a quarter routed with `model: auto`, the rest named a tier's deployment), plus one worker on the
rpm-limited key and one on the budget-limited key, each sending faster than its limit allows.
Every request has a deadline of its own: a request that neither ends nor fails in time is a
`timeout` (a hang), never waited for. What a client saw is one of: `ok` (a whole answer: JSON
200, or a stream that reached `[DONE]`), `http_error` (an answer with an error status, such as a
429), `cut` (a stream that broke after it started: the error a client sees when the replica
serving it dies), `failed` (no answer at all: connection refused or reset) and `timeout`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Literal

import aiohttp

from bench.fleet import KEYS
from bench.prompts import prompt

Result = Literal["ok", "http_error", "cut", "failed", "timeout"]


@dataclass(frozen=True)
class Outcome:
    request_id: str
    kind: Literal["json", "stream"]
    key: str
    model: str
    started: float
    ended: float
    status: int | None
    result: Result
    error: str | None = None


_TOPICS = (
    "Say hello to a new colleague.",
    "HARD: prove that there are infinitely many primes, step by step.",
    "What is the capital of France?",
    "HARD: design a distributed lock service and explain its failure modes.",
    "Translate 'good morning' into Spanish.",
    "HARD: derive the closed form of the Fibonacci sequence.",
)


async def _one(
    session: aiohttp.ClientSession,
    url: str,
    request_id: str,
    key: str,
    model: str,
    stream: bool,
    content: str,
    timeout_s: float,
    max_tokens: int | None = None,
) -> Outcome:
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if stream:
        body["stream"] = True
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    headers = {"authorization": f"Bearer {KEYS[key]}", "x-request-id": request_id}
    started = time.time()
    kind: Literal["json", "stream"] = "stream" if stream else "json"
    status: int | None = None
    got_data = False

    def outcome(result: Result, error: str | None = None) -> Outcome:
        return Outcome(request_id, kind, key, model, started, time.time(), status, result, error)

    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(
                f"{url}/v1/chat/completions", json=body, headers=headers
            ) as resp:
                status = resp.status
                if resp.status != 200:
                    await resp.read()
                    return outcome("http_error")
                if not stream:
                    await resp.json()
                    return outcome("ok")
                async for line in resp.content:
                    got_data = True
                    if line.strip() == b"data: [DONE]":
                        return outcome("ok")
                return outcome("cut", "the stream ended without [DONE]")
    except TimeoutError:
        return outcome("timeout")
    except (aiohttp.ClientError, ConnectionError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        return outcome("cut" if got_data or status == 200 else "failed", error)


async def drive(
    url: str,
    *,
    duration_s: float,
    concurrency: int,
    timeout_s: float = 30.0,
    rpm_interval_s: float = 0.3,
    budget_interval_s: float = 0.25,
) -> list[Outcome]:
    """Load `url` (HAProxy) for `duration_s`; every request's outcome, in no particular order."""
    deadline = time.monotonic() + duration_s
    counter = itertools.count()
    outcomes: list[Outcome] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    session = aiohttp.ClientSession(connector=connector)

    async def main_worker(w: int) -> None:
        while time.monotonic() < deadline:
            n = next(counter)
            stream = n % 2 == 1
            model = "auto" if n % 4 == 0 else ("small-a" if n % 4 in (1, 2) else "large-a")
            content = f"{_TOPICS[n % len(_TOPICS)]} (request {n})"
            outcomes.append(
                await _one(session, url, f"lt-{n:06d}", "load", model, stream, content, timeout_s)
            )

    async def limited_worker(key: str, model: str, interval_s: float, max_tokens: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            tick = time.monotonic()
            outcomes.append(
                await _one(
                    session,
                    url,
                    f"{key}-{n:05d}",
                    key,
                    model,
                    False,
                    prompt(128),
                    timeout_s,
                    max_tokens=max_tokens,
                )
            )
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - tick)))

    try:
        await asyncio.gather(
            *(main_worker(w) for w in range(concurrency)),
            limited_worker("rpm", "small-a", rpm_interval_s, 32),
            limited_worker("budget", "large-a", budget_interval_s, 32),
        )
    finally:
        await session.close()
    return outcomes
