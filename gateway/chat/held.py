"""Streams in escalation mode: an answer held back until it is judged, then streamed whole.

A streamed request in escalation mode cannot send the cheaper tier's tokens as they come: the
answer may yet be discarded. So the cheaper tier answers as one JSON body, which is judged
(`gateway.chat.escalation`), and the client is streamed either that answer (`ReplayStream`: the
chunks an OpenAI server would have sent for it) or the escalation tier's live stream.

The response's headers wait for the decision up to `KEEPALIVE_S`. When judging takes longer (a
long cheaper answer), the headers go out with what is known so far and `HeldStream` sends an SSE
comment (`: keep-alive`) every `KEEPALIVE_S` seconds while the answer is held back, so that no
proxy's idle timeout fires; once decided, one more comment says where the answer came from
(`: tiergate route=... deployment=... escalated=...`), since the headers could not.
SSE clients ignore comments.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Protocol

from gateway.chat.attempt import finish_failed
from gateway.chat.ledger import Ledger
from gateway.chat.stream import DONE, StreamRelay, sse
from gateway.protocol.errors import GatewayError, envelope
from gateway.protocol.openai import JSON

KEEPALIVE_S = 5.0
KEEPALIVE = b": keep-alive\n\n"


class EventSource(Protocol):
    """A response's SSE bytes and what must run after the response, however it went."""

    def events(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


def replay_chunks(body: JSON) -> list[JSON]:
    """The stream chunks an OpenAI server sends for the JSON answer `body`: per choice, its whole
    content (and tool calls) in one chunk, then its finish; then the usage chunk. The client's
    relay (`Wire.relay`) takes them as it takes a live stream's: it renames the model, hides the
    usage chunk from a client that did not ask for it, or translates them (the Responses API)."""
    chat = body.get("object") != "text_completion"
    base = {
        "id": body.get("id") or "chatcmpl-tiergate",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": body.get("created") or 0,
        "model": body.get("model") or "",
    }
    chunks: list[JSON] = []
    for index, choice in enumerate(body.get("choices") or ()):
        index = choice.get("index", index)
        finish = choice.get("finish_reason")
        if not chat:
            text = choice.get("text") or ""
            chunks.append({**base, "choices": [_text(index, text, None)]})
            chunks.append({**base, "choices": [_text(index, "", finish)]})
            continue
        message = choice.get("message") or {}
        delta: JSON = {"role": "assistant"}
        for name in ("content", "refusal"):
            if message.get(name) is not None:
                delta[name] = message[name]
        calls = message.get("tool_calls")
        if calls:
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(calls)]
        chunks.append(
            {**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}
        )
        chunks.append({**base, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]})
    if body.get("usage"):
        chunks.append({**base, "choices": [], "usage": body["usage"]})
    return chunks


def _text(index: int, text: str, finish: Any) -> JSON:
    return {"index": index, "text": text, "logprobs": None, "finish_reason": finish}


class ReplayStream:
    """A kept JSON answer streamed to the client through its relay (over `replay_chunks`);
    `finish(client_aborted)`, the ledger's end of the stream, runs once however the response
    ends: read whole, left by the client, or never started."""

    def __init__(self, relay: StreamRelay, finish: Callable[[bool], None]) -> None:
        self._relay = relay
        self._finish = finish
        self._done = False
        self._events = relay.events(self._end)

    def events(self) -> AsyncIterator[bytes]:
        return self._events

    def _end(self) -> None:
        if not self._done:
            self._done = True
            self._finish(self._relay.client_aborted)

    async def close(self) -> None:
        await self._events.aclose()
        await self._relay.abandon(self._end)


class HeldStream:
    """The response of a request whose answer is still being decided (`decided` yields its
    source): keep-alive comments until it is, then the comment `describe()` writes, then the
    source's events. Closing cancels an undecided task and closes a decided source."""

    def __init__(
        self,
        decided: asyncio.Task[EventSource],
        ledger: Ledger,
        describe: Callable[[], bytes],
        *,
        interval_s: float = KEEPALIVE_S,
    ) -> None:
        self._decided = decided
        self._ledger = ledger
        self._describe = describe
        self._interval = interval_s
        self._source: EventSource | None = None
        self._events = self._run()

    def events(self) -> AsyncIterator[bytes]:
        return self._events

    async def _run(self) -> AsyncGenerator[bytes, None]:
        while not self._decided.done():
            done, _ = await asyncio.wait({self._decided}, timeout=self._interval)
            if not done:
                yield KEEPALIVE
        try:
            self._source = self._decided.result()
        except GatewayError as exc:  # no deployment answered: an error event ends the stream
            self._failed(exc)
            yield sse(envelope(exc.status, exc.message, code=exc.code))
            yield DONE
            return
        yield self._describe()
        async for chunk in self._source.events():
            yield chunk

    def _failed(self, exc: GatewayError) -> None:
        finish_failed(self._ledger, exc)

    async def close(self) -> None:
        await self._events.aclose()
        if not self._decided.done():
            self._decided.cancel()
            with contextlib.suppress(BaseException):
                await self._decided
            self._ledger.aborted()
            self._ledger.finish()
            return
        if self._source is None and not self._decided.cancelled():
            if self._decided.exception() is None:
                self._source = self._decided.result()
            else:
                # Decided with an error the client never saw (it left first).
                exc = self._decided.exception()
                if isinstance(exc, GatewayError):
                    self._failed(exc)
                else:
                    self._ledger.crashed()
                    self._ledger.finish()
        if self._source is not None:
            await self._source.close()


def describe_route(ledger: Ledger) -> bytes:
    """The SSE comment saying where a held answer came from (the headers went out before)."""
    rec = ledger.record
    facts = {
        "route": rec.served_tier,
        "deployment": rec.deployment,
        "escalated": rec.escalated,
    }
    text = " ".join(f"{k}={v}" for k, v in facts.items() if v)
    return f": tiergate {text}\n\n".encode()
