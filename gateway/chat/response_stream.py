"""Relaying a stream to a Responses API client: translated from chat chunks, or passed through from
a deployment that serves the Responses API natively.

Both are `StreamRelay`s (`gateway.chat.stream`): the relay keeps its lifecycle (first chunk before
anything is sent, timeouts, the client leaving, the lease) and its counts; these two replace what
the client sees. `TranslatedRelay` feeds each chat chunk to `ResponseEvents` and sends the typed
events it returns. `NativeRelay` sends the deployment's own events with the gateway's response id
and the deployment's name, and takes the tokens from its final `usage`.

When the response is to be stored, `on_complete` receives the final `response` object before the
client gets `response.completed`, so a client that reads the id from that event can continue the
conversation at once; if it cannot be stored, the client gets `error` and `response.failed`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cached_property

from gateway.access.allowance import StreamAllowance
from gateway.chat.response_events import ResponseEvents
from gateway.chat.stream import StreamRelay
from gateway.chat.translate import ResponseShell
from gateway.lifecycle import Drain
from gateway.protocol.openai import JSON
from gateway.protocol.responses import sse_event
from gateway.telemetry.tokens import estimate

log = logging.getLogger(__name__)

OnComplete = Callable[[JSON], Awaitable[None]]
"""Called with the final `response` object before `response.completed` is sent."""

_FINAL = frozenset({"response.completed", "response.incomplete"})
_WITH_RESPONSE = frozenset({"response.created", "response.in_progress", "response.failed", *_FINAL})
_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_text.delta",
        "response.refusal.delta",
    }
)


def _frames(events: list[JSON]) -> list[bytes]:
    return [sse_event(e) for e in events]


class _ResponsesRelay(StreamRelay):
    """What both relays share: the usage chunk is always read (`response.completed` needs the
    counts), never sent as it is; the response names the deployment; `on_complete` stores it."""

    def __init__(
        self,
        chunks: AsyncIterator[JSON],
        *,
        target_name: str,
        prompt_chars: int,
        shell: ResponseShell,
        on_complete: OnComplete | None,
        allowance: StreamAllowance | None = None,
        drain: Drain | None = None,
    ) -> None:
        super().__init__(
            chunks,
            target_name=target_name,
            client_wants_usage=True,
            prompt_chars=prompt_chars,
            allowance=allowance,
            drain=drain,
        )
        shell.model = target_name
        self._shell = shell
        self._on_complete = on_complete


class TranslatedRelay(_ResponsesRelay):
    """A chat completions stream, sent as the Responses API's events."""

    @cached_property
    def _events(self) -> ResponseEvents:
        return ResponseEvents(self._shell)

    def _frame(self, chunk: JSON) -> bytes:
        return b"".join(_frames(self._events.chunk(chunk)))

    def _failure(self, message: str, code: str, status: int = 502) -> list[bytes]:
        return _frames(self._events.failed(message, code))

    async def _end(self) -> list[bytes]:
        closing = self._events.completed(self.prompt_tokens, self.completion_tokens)
        assert self._events.response is not None
        if not await _stored(self._on_complete, self._events.response):
            return _frames(self._events.failed(STORE_FAILED, "store_failed"))
        return _frames(closing)


class NativeRelay(_ResponsesRelay):
    """A native Responses stream, passed through under the gateway's response id."""

    _final: JSON | None = None
    """The `response.completed` (or incomplete) event, held until the response is stored."""
    _sequence = 0

    def _rewrite(self, chunk: JSON) -> JSON | None:
        kind = chunk.get("type")
        self._sequence = max(self._sequence, int(chunk.get("sequence_number") or 0) + 1)
        if kind in _DELTAS and isinstance(chunk.get("delta"), str):
            self._completion_chars += len(chunk["delta"])
        if kind in _WITH_RESPONSE and isinstance(chunk.get("response"), dict):
            chunk["response"] = adopt(chunk["response"], self._shell)
        if kind in _FINAL:
            used = chunk["response"].get("usage") or {}
            if used.get("input_tokens") or used.get("output_tokens"):
                self._usage = {
                    "prompt_tokens": int(used.get("input_tokens") or 0),
                    "completion_tokens": int(used.get("output_tokens") or 0),
                }
            self._final = chunk
            return None  # sent by `_end`, once it is stored
        return chunk

    def _frame(self, chunk: JSON) -> bytes:
        return sse_event(chunk)

    def _failure(self, message: str, code: str, status: int = 502) -> list[bytes]:
        body = self._shell.body("failed", [])
        body["error"] = {"code": "server_error", "message": message}
        error = {"type": "error", "code": code, "message": message, "param": None}
        failed = {"type": "response.failed", "response": body}
        return [self._numbered(error), self._numbered(failed)]

    async def _end(self) -> list[bytes]:
        if self._final is None:
            return self._failure(f"{self._shell.model} ended its stream without a response", "")
        response = self._final["response"]
        if response.get("usage") is None:
            response["usage"] = {
                "input_tokens": self.prompt_tokens,
                "output_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            }
        if not await _stored(self._on_complete, response):
            return self._failure(STORE_FAILED, "store_failed")
        return [sse_event(self._final)]

    def _numbered(self, event: JSON) -> bytes:
        event["sequence_number"] = self._sequence
        self._sequence += 1
        return sse_event(event)


STORE_FAILED = "the response could not be stored; it was not kept (see the gateway's log)"


async def _stored(on_complete: OnComplete | None, response: JSON) -> bool:
    if on_complete is None:
        return True
    try:
        await on_complete(response)
    except Exception:
        log.exception("storing response %s failed", response.get("id"))
        return False
    return True


def adopt(response: JSON, shell: ResponseShell) -> JSON:
    """A native deployment's `response` object as the gateway's: its id, the deployment's name,
    and the fields the gateway handled itself (`store`, `previous_response_id`)."""
    response["id"] = shell.id
    response["model"] = shell.model
    response["store"] = shell.store
    response["previous_response_id"] = shell.request.previous_response_id
    return response


def estimated_output_tokens(response: JSON) -> int:
    """Output tokens of a native JSON answer that reports no usage: its text and arguments."""
    chars = 0
    for item in response.get("output") or ():
        chars += len(str(item.get("arguments") or ""))
        for part in item.get("content") or ():
            chars += len(str(part.get("text") or ""))
    return estimate(chars)
