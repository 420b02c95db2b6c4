"""A fake OpenAI-compatible upstream, served over real HTTP on loopback.

Tests enqueue what the next requests should meet (`Reply`, `Fail`, `Stall`, `Cut`, `Malformed`,
`Endless`) and read `history` to see exactly what reached the upstream. With nothing queued it
answers every request with its `default` (a short reply; a `Script` answers by what the request
says, for clients that hold a conversation). It speaks `/v1/chat/completions` (JSON and SSE),
`/v1/completions`, `/v1/models`, `/v1/embeddings`, and `/v1/responses` (JSON and typed SSE events,
as a server that serves the Responses API natively does).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Reply:
    text: str = "Hello from the fake upstream."
    tool_calls: list[dict[str, Any]] | None = None
    prompt_tokens: int = 11
    completion_tokens: int = 7
    delay_s: float = 0.0
    """Wait before the first byte."""
    interval_s: float = 0.0
    """Wait between two chunks of a stream."""
    report_usage: bool = True
    """False: like some servers, send no `usage` at all."""


@dataclass
class Fail:
    status: int = 500
    message: str = "injected failure"
    retry_after: float | str | None = None
    """Sent as `Retry-After` as it is: seconds, or a string such as an HTTP date."""


@dataclass
class Stall:
    """Accept the request, then send nothing for `seconds`."""

    seconds: float = 30.0


@dataclass
class Cut:
    """Stream `after` chunks, then drop the connection without [DONE]."""

    after: int = 2


@dataclass
class Malformed:
    """A 200 whose body is not JSON."""


@dataclass
class Endless:
    """Stream chunks forever (until the client goes away)."""

    interval_s: float = 0.01


@dataclass
class Script:
    """Answer each request by what it says: `reply(body)` returns the `Reply` for it."""

    reply: Callable[[dict[str, Any]], Reply]


Behaviour = Reply | Fail | Stall | Cut | Malformed | Endless | Script


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeUpstream:
    name: str = "fake"
    queue: deque[Behaviour] = field(default_factory=deque)
    history: list[Seen] = field(default_factory=list)
    default: Behaviour = field(default_factory=Reply)
    url: str = ""
    """Base URL including `/v1`, set once serving."""
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _sock: socket.socket | None = None
    stream_cancelled: int = 0
    models_seen: int = 0
    """`GET /models` requests received (the gateway's upstream probes)."""

    def enqueue(self, *behaviours: Behaviour) -> None:
        self.queue.extend(behaviours)

    def _next(self) -> Behaviour:
        return self.queue.popleft() if self.queue else self.default

    # --- HTTP -------------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        return await self._handle(request, chat=True)

    async def _completions(self, request: Request) -> Response:
        return await self._handle(request, chat=False)

    async def _models(self, request: Request) -> Response:
        self.models_seen += 1
        return JSONResponse({"object": "list", "data": [{"id": self.name, "object": "model"}]})

    async def _embeddings(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.history.append(Seen(request.url.path, dict(request.headers), body))
        behaviour = self._next()
        if isinstance(behaviour, Fail):
            return _failure(behaviour)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(str(t))}
            for i, t in enumerate(texts)
        ]
        tokens = sum(len(str(t).split()) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        model = str(body.get("model", self.name))
        return JSONResponse({"object": "list", "data": data, "model": model, "usage": usage})

    async def _responses(self, request: Request) -> Response:
        """The Responses API served natively: the reply as a `response`, or its typed events."""
        body = json.loads(await request.body())
        self.history.append(Seen(request.url.path, dict(request.headers), body))
        behaviour = self._next()
        if isinstance(behaviour, Script):
            behaviour = behaviour.reply(body)
        if isinstance(behaviour, Fail):
            return _failure(behaviour)
        if isinstance(behaviour, Stall):
            await asyncio.sleep(behaviour.seconds)
            behaviour = Reply()
        reply = behaviour if isinstance(behaviour, Reply) else Reply()
        model = str(body.get("model", self.name))
        if body.get("stream"):
            return StreamingResponse(_response_events(reply, model), media_type="text/event-stream")
        await asyncio.sleep(reply.delay_s)
        return JSONResponse(_response(reply, model, "completed"))

    async def _handle(self, request: Request, chat: bool) -> Response:
        body = json.loads(await request.body())
        self.history.append(Seen(request.url.path, dict(request.headers), body))
        behaviour = self._next()
        if isinstance(behaviour, Script):
            behaviour = behaviour.reply(body)
        model = str(body.get("model", self.name))
        if isinstance(behaviour, Fail):
            return _failure(behaviour)
        if isinstance(behaviour, Malformed):
            return Response("{this is not json", media_type="application/json")
        if isinstance(behaviour, Stall):
            await asyncio.sleep(behaviour.seconds)
            behaviour = Reply()
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._sse(behaviour, model, chat, usage), media_type="text/event-stream"
            )
        assert isinstance(behaviour, Reply), f"{behaviour} only makes sense for streams"
        await asyncio.sleep(behaviour.delay_s)
        body = _full(behaviour, model, chat)
        if not behaviour.report_usage:
            del body["usage"]
        return JSONResponse(body)

    async def _sse(
        self, behaviour: Behaviour, model: str, chat: bool, usage: bool
    ) -> AsyncIterator[bytes]:
        reply = behaviour if isinstance(behaviour, Reply) else Reply()
        await asyncio.sleep(reply.delay_s)
        words = reply.text.split(" ")
        try:
            if isinstance(behaviour, Endless):
                i = 0
                while True:
                    yield _event(_chunk(model, chat, f"w{i} ", None))
                    i += 1
                    await asyncio.sleep(behaviour.interval_s)
            for i, word in enumerate(words):
                if isinstance(behaviour, Cut) and i == behaviour.after:
                    raise ConnectionAbortedError("cut by the test")
                if i and reply.interval_s:
                    await asyncio.sleep(reply.interval_s)
                piece = word if i == 0 else " " + word
                yield _event(_chunk(model, chat, piece, None, role=(i == 0)))
            if reply.tool_calls and chat:
                yield _event(_tool_chunk(model, reply.tool_calls))
            finish = "tool_calls" if reply.tool_calls and chat else "stop"
            yield _event(_chunk(model, chat, None, finish))
            if usage and reply.report_usage:
                final = _chunk(model, chat, None, None)
                final["choices"] = []
                final["usage"] = _usage(reply)
                yield _event(final)
            yield b"data: [DONE]\n\n"
        except asyncio.CancelledError:
            self.stream_cancelled += 1
            raise

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/completions", self._completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
            ]
        )
        self._server, self._thread, self._sock = serve_in_thread(app)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None


def serve_in_thread(
    app: Any, config: uvicorn.Config | None = None
) -> tuple[uvicorn.Server, threading.Thread, socket.socket]:
    """Serve an ASGI app on a free loopback port from a daemon thread; returns when it listens.
    `config` is uvicorn's (default: uvicorn's defaults, quiet)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    if config is None:
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
        )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    return server, thread, sock


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _full(reply: Reply, model: str, chat: bool) -> dict[str, Any]:
    created = int(time.time())
    if not chat:
        return {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "text": reply.text, "finish_reason": "stop", "logprobs": None}
            ],
            "usage": _usage(reply),
        }
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    finish = "stop"
    if reply.tool_calls:
        message = {"role": "assistant", "content": None, "tool_calls": reply.tool_calls}
        finish = "tool_calls"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(reply),
    }


def _chunk(
    model: str, chat: bool, text: str | None, finish: str | None, role: bool = False
) -> dict[str, Any]:
    if not chat:
        return {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "text": text or "", "finish_reason": finish}],
        }
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if text is not None:
        delta["content"] = text
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _tool_chunk(model: str, tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    chunk = _chunk(model, True, None, None)
    chunk["choices"][0]["delta"] = {
        "tool_calls": [{"index": i, **call} for i, call in enumerate(tool_calls)]
    }
    return chunk


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _failure(fail: Fail) -> Response:
    headers = {}
    if fail.retry_after is not None:
        headers["retry-after"] = str(fail.retry_after)
    return JSONResponse(
        {"error": {"message": fail.message, "type": "server_error", "code": None}},
        status_code=fail.status,
        headers=headers,
    )


def _vector(text: str, dims: int = 8) -> list[float]:
    """A deterministic unit-ish vector for `text`: equal texts, equal vectors."""
    return [((len(text) * (i + 3) + sum(map(ord, text))) % 97) / 97.0 for i in range(dims)]


def _output(reply: Reply) -> list[dict[str, Any]]:
    if reply.tool_calls:
        return [
            {
                "type": "function_call",
                "id": f"fc_fake{i}",
                "call_id": call["id"],
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
                "status": "completed",
            }
            for i, call in enumerate(reply.tool_calls)
        ]
    part = {"type": "output_text", "text": reply.text, "annotations": []}
    message = {"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant"}
    return [{**message, "content": [part]}]


def _response(reply: Reply, model: str, status: str) -> dict[str, Any]:
    usage = {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
    done = status == "completed"
    return {
        "id": "resp_upstream",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": _output(reply) if done else [],
        "usage": usage if done and reply.report_usage else None,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "store": False,
    }


async def _response_events(reply: Reply, model: str) -> AsyncIterator[bytes]:
    """OpenAI's event order for a text answer (or function calls), one delta per word."""
    await asyncio.sleep(reply.delay_s)
    n = 0

    def event(kind: str, **fields: Any) -> bytes:
        nonlocal n
        payload = {"type": kind, "sequence_number": n, **fields}
        n += 1
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()

    yield event("response.created", response=_response(reply, model, "in_progress"))
    for index, item in enumerate(_output(reply)):
        if item["type"] == "function_call":
            yield event(
                "response.output_item.added", output_index=index, item={**item, "arguments": ""}
            )
            yield event("response.function_call_arguments.delta", item_id=item["id"],
                        output_index=index, delta=item["arguments"])  # fmt: skip
            yield event("response.function_call_arguments.done", item_id=item["id"],
                        output_index=index, arguments=item["arguments"])  # fmt: skip
        else:
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            yield event(
                "response.output_item.added", output_index=index, item={**item, "content": []}
            )
            empty = {"type": "output_text", "text": "", "annotations": []}
            yield event("response.content_part.added", **where, part=empty)
            for i, word in enumerate(reply.text.split(" ")):
                if i and reply.interval_s:
                    await asyncio.sleep(reply.interval_s)
                yield event(
                    "response.output_text.delta", **where, delta=word if i == 0 else " " + word
                )
            yield event("response.output_text.done", **where, text=reply.text)
            yield event("response.content_part.done", **where, part=item["content"][0])
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=_response(reply, model, "completed"))
