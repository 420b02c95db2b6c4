"""Personal data in one request: which kinds it carries, and the copy a non-local deployment gets.

Detection and placeholders are pure (`policies.pii`); this module knows where text lives in the
OpenAI request shapes: every message's content (a string, or the `text` of its parts), the
arguments of earlier tool calls, a completion's prompt, a Responses request's `input` and
`instructions`. `kinds` tells the `pii` rule what was found; `RedactedWire` wraps a request's wire
(`gateway.chat.wire`) so that every deployment not marked `local: true` gets the call with each
match replaced by a placeholder (`[EMAIL_1]`, the same value getting the same placeholder in every
message), and local ones get it as it came. Nothing here logs or keeps what it found. Scanning
costs 0.02 to 0.06 ms per 1,000 characters (bench/RESULTS.md): a long request is scanned in a
worker thread so that it never holds up the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar

from gateway.access.allowance import StreamAllowance
from gateway.chat.capabilities import Need
from gateway.chat.stream import StreamRelay
from gateway.chat.wire import Endpoint, Tokens, Wire
from gateway.lifecycle import Drain
from gateway.protocol.openai import JSON, ChatCompletionRequest, RoutedRequest
from gateway.upstream.base import Target, UpstreamCall
from policies.pii import Detector, Redactor

OFF_LOOP_CHARS = 16_384
"""Requests longer than this are scanned in a worker thread (about a millisecond of work)."""
TEXT_FIELDS = ("messages", "prompt", "input", "instructions")
"""The upstream call's fields that hold text a model reads."""
TEXT_KEYS = frozenset({"content", "text", "arguments", "output", *TEXT_FIELDS})
"""Keys whose string values (or lists of strings) are text, at any depth of those fields."""
T = TypeVar("T")


def request_texts(request: RoutedRequest) -> Iterator[str]:
    """Every text in `request` a model would read, for detection."""
    if isinstance(request, ChatCompletionRequest):
        for message in request.messages:
            yield message.text()
            for call in message.tool_calls or ():
                function = call.get("function")
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    yield function["arguments"]
    else:
        yield request.routing_items()


async def _run(work: Callable[[], T], chars: int) -> T:
    return await asyncio.to_thread(work) if chars > OFF_LOOP_CHARS else work()


async def kinds(detector: Detector, request: RoutedRequest) -> tuple[str, ...]:
    """The kinds of personal data `request` carries, sorted."""
    return await _run(lambda: detector.kinds(request_texts(request)), request.prompt_chars())


def redact(redactor: Redactor, call: UpstreamCall) -> UpstreamCall:
    """`call` with personal data replaced in every text field (`TEXT_FIELDS`)."""
    params = dict(call.params)
    for name in TEXT_FIELDS:
        if name in params:
            params[name] = _walk(params[name], redactor, name)
    return UpstreamCall(call.endpoint, params, call.extra)


def _walk(node: Any, redactor: Redactor, key: str | None) -> Any:
    """A copy of `node` with the strings under text keys redacted (lists keep their key)."""
    if isinstance(node, str):
        return redactor.redact(node) if key in TEXT_KEYS else node
    if isinstance(node, list):
        return [_walk(item, redactor, key) for item in node]
    if isinstance(node, dict):
        return {k: _walk(v, redactor, k) for k, v in node.items()}
    return node


class RedactedWire:
    """A request's wire whose call to a non-local deployment is redacted. Build with `build`,
    which redacts the call of every non-local candidate before any is tried."""

    def __init__(self, inner: Wire, redactor: Redactor, redacted: dict[str, UpstreamCall]):
        self._inner = inner
        self._redactor = redactor
        self._redacted = redacted

    @property
    def counts(self) -> dict[str, int]:
        """Distinct values replaced, by kind."""
        return self._redactor.counts

    @classmethod
    async def build(
        cls, inner: Wire, detector: Detector, candidates: Sequence[Target], chars: int
    ) -> RedactedWire:
        def work() -> RedactedWire:
            redactor = Redactor(detector)
            redacted = {
                t.name: redact(redactor, inner.call(t))
                for t in candidates
                if not t.deployment.local
            }
            return cls(inner, redactor, redacted)

        return await _run(work, chars)

    @property
    def endpoint(self) -> Endpoint:
        return self._inner.endpoint

    @property
    def needs(self) -> frozenset[Need]:
        return self._inner.needs

    def call(self, target: Target) -> UpstreamCall:
        if target.deployment.local:
            return self._inner.call(target)
        if target.name not in self._redacted:  # not a candidate at build time; never expected
            self._redacted[target.name] = redact(self._redactor, self._inner.call(target))
        return self._redacted[target.name]

    def answer(self, target: Target, body: JSON) -> tuple[JSON, Tokens]:
        return self._inner.answer(target, body)

    def relay(
        self,
        target: Target,
        chunks: AsyncIterator[JSON],
        *,
        allowance: StreamAllowance | None = None,
        drain: Drain | None = None,
    ) -> StreamRelay:
        return self._inner.relay(target, chunks, allowance=allowance, drain=drain)
