"""A fast fake OpenAI upstream for benchmarks: raw asyncio + httptools on uvloop, canned answers.

The tests' fake upstream (tests/support/upstream.py) is built for faults and inspection: starlette,
a JSON parse and a history entry per request. Here the upstream must cost as little as possible,
so the figures measure the gateway and not the fake: answers are prebuilt bytes, the request body
is never parsed (`"stream": true` is found by a byte search), and HTTP/1.1 keep-alive is handled
directly on the transport. It answers `POST /v1/chat/completions` and `/v1/completions` (JSON, or
SSE when the body asks for a stream, usage always included) and `GET /v1/models`, after a fixed
delay (`--latency-ms`) standing in for model time. `--chunk-delay-ms` paces a stream's events (one
per word) that far apart, so a stream lasts as long as a model's would (the failover proof needs
streams in flight when a replica dies); without it the whole stream goes in one write.
`--json-takes-stream-time` makes a JSON answer wait as long as its stream would take to the last
event (a model generates the whole answer either way: bench/escalation.py needs that, since
escalation mode asks the cheaper tier for JSON where the client asked for a stream).

Run: `python -m bench.upstream --port 9000 --latency-ms 0`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from typing import Any, cast

import httptools
import orjson
import uvloop

MODEL = "bench-model"
REPLY = "The quick brown fox jumps over the lazy dog, and then it rests in the warm afternoon sun."
USAGE = {"prompt_tokens": 128, "completion_tokens": 20, "total_tokens": 148}
_STREAM = re.compile(rb'"stream"\s*:\s*true')


def _chat_body() -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": REPLY},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )


def _text_body() -> bytes:
    return orjson.dumps(
        {
            "id": "cmpl-bench",
            "object": "text_completion",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [{"index": 0, "text": REPLY, "finish_reason": "stop", "logprobs": None}],
            "usage": USAGE,
        }
    )


def _stream(chat: bool) -> list[bytes]:
    """The SSE answer's events: one chunk per word, then a usage chunk and [DONE]."""
    created = int(time.time())

    def chunk(text: str | None, finish: str | None, first: bool = False) -> dict[str, Any]:
        if not chat:
            choice: dict[str, Any] = {"index": 0, "text": text or "", "finish_reason": finish}
            return {
                "id": "cmpl-bench",
                "object": "text_completion",
                "created": created,
                "model": MODEL,
                "choices": [choice],
            }
        delta: dict[str, Any] = {"role": "assistant"} if first else {}
        if text is not None:
            delta["content"] = text
        return {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    words = REPLY.split(" ")
    events = [chunk(words[0], None, first=True)]
    events += [chunk(" " + w, None) for w in words[1:]]
    events.append(chunk(None, "stop"))
    usage = chunk(None, None)
    usage["choices"], usage["usage"] = [], USAGE
    events.append(usage)
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


def _response(status: str, content_type: bytes, body: bytes) -> bytes:
    return b"".join(_pieces(status, content_type, [body]))


def _pieces(status: str, content_type: bytes, parts: list[bytes]) -> list[bytes]:
    """The HTTP message as its head and body parts (head + first part in one piece)."""
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: ".encode()
        + content_type
        + f"\r\ncontent-length: {sum(len(p) for p in parts)}\r\n\r\n".encode()
    )
    return [head + parts[0], *parts[1:]]


class Answers:
    """Every response the upstream can give, as complete HTTP messages built once."""

    def __init__(self) -> None:
        js, sse = b"application/json", b"text/event-stream"
        self.chat = _response("200 OK", js, _chat_body())
        self.text = _response("200 OK", js, _text_body())
        self.chat_stream = _pieces("200 OK", sse, _stream(chat=True))
        self.text_stream = _pieces("200 OK", sse, _stream(chat=False))
        models = {"object": "list", "data": [{"id": MODEL, "object": "model"}]}
        self.models = _response("200 OK", js, orjson.dumps(models))
        self.missing = _response("404 Not Found", js, b'{"error": {"message": "no such route"}}')


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: parse requests with httptools, answer each after the delay."""

    def __init__(
        self,
        answers: Answers,
        delay_s: float,
        chunk_delay_s: float = 0.0,
        json_takes_stream_time: bool = False,
    ) -> None:
        self._answers = answers
        self._delay = delay_s
        self._chunk_delay = chunk_delay_s
        self._json_delay = delay_s
        if json_takes_stream_time:
            self._json_delay += chunk_delay_s * (len(answers.chat_stream) - 1)
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._body = b"", []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer = self._answer(self._url, b"".join(self._body))
        keep_alive = self._parser.should_keep_alive()
        delay = self._delay if isinstance(answer, list) else self._json_delay
        if delay > 0:
            self._loop.call_later(delay, self._send, answer, keep_alive)
        else:
            self._send(answer, keep_alive)

    def _answer(self, url: bytes, body: bytes) -> bytes | list[bytes]:
        a = self._answers
        path = url.split(b"?", 1)[0]
        stream = _STREAM.search(body) is not None
        if path.endswith(b"/chat/completions"):
            return a.chat_stream if stream else a.chat
        if path.endswith(b"/completions"):
            return a.text_stream if stream else a.text
        if path.endswith(b"/models"):
            return a.models
        return a.missing

    def _send(self, answer: bytes | list[bytes], keep_alive: bool) -> None:
        if isinstance(answer, list):
            if self._chunk_delay <= 0:
                answer = b"".join(answer)
            else:
                self._send_paced(answer, 0, keep_alive)
                return
        if self._transport is None:
            return
        self._transport.write(answer)
        if not keep_alive:
            self._transport.close()

    def _send_paced(self, pieces: list[bytes], i: int, keep_alive: bool) -> None:
        if self._transport is None:
            return
        self._transport.write(pieces[i])
        if i + 1 < len(pieces):
            self._loop.call_later(self._chunk_delay, self._send_paced, pieces, i + 1, keep_alive)
        elif not keep_alive:
            self._transport.close()


async def serve(
    host: str,
    port: int,
    delay_s: float,
    chunk_delay_s: float = 0.0,
    json_takes_stream_time: bool = False,
) -> None:
    answers = Answers()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(answers, delay_s, chunk_delay_s, json_takes_stream_time),
        host,
        port,
        backlog=1024,
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    parser.add_argument(
        "--json-takes-stream-time",
        action="store_true",
        help="JSON answers wait as long as the paced stream would take to its last event",
    )
    args = parser.parse_args(argv)
    uvloop.run(
        serve(
            args.host,
            args.port,
            args.latency_ms / 1000,
            args.chunk_delay_ms / 1000,
            args.json_takes_stream_time,
        )
    )


if __name__ == "__main__":
    main()
