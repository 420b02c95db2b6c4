"""Personal data in one request: which kinds it carries, and the copy a non-local deployment gets.

Detection and placeholders are pure (`policies.pii`); this module knows where text lives in the
OpenAI request shapes: every message's content (a string, or the `text` of its parts), the
arguments of earlier tool calls, a completion's prompt. `kinds` tells the `pii` rule what was found;
`redact` gives the upstream call with each match replaced by a placeholder (`[EMAIL_1]`), the same
value getting the same placeholder in every message. Nothing here logs or keeps what it found.
Scanning costs 0.02 to 0.06 ms per 1,000 characters (bench/RESULTS.md): a long request is
scanned in a worker thread so that it never holds up the event loop.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from gateway.protocol.openai import ChatCompletionRequest, RoutedRequest
from gateway.upstream.base import UpstreamCall
from policies.pii import Detector, Redactor


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


OFF_LOOP_CHARS = 16_384
"""Requests longer than this are scanned in a worker thread (about a millisecond of work)."""
T = TypeVar("T")


async def _run(work: Callable[[], T], chars: int) -> T:
    return await asyncio.to_thread(work) if chars > OFF_LOOP_CHARS else work()


async def kinds(detector: Detector, request: RoutedRequest) -> tuple[str, ...]:
    """The kinds of personal data `request` carries, sorted."""
    return await _run(lambda: detector.kinds(request_texts(request)), request.prompt_chars())


async def redact(
    detector: Detector, call: UpstreamCall, *, request_chars: int
) -> tuple[UpstreamCall, dict[str, int]]:
    """`call` with personal data replaced, and how many distinct values of each kind were."""
    return await _run(lambda: _redacted(detector, call), request_chars)


def _redacted(detector: Detector, call: UpstreamCall) -> tuple[UpstreamCall, dict[str, int]]:
    redactor = Redactor(detector)
    params = copy.deepcopy(call.params)
    if call.endpoint == "chat":
        for message in params.get("messages") or ():
            _redact_message(redactor, message)
    else:
        prompt = params.get("prompt")
        if isinstance(prompt, str):
            params["prompt"] = redactor.redact(prompt)
        elif isinstance(prompt, list):
            params["prompt"] = [redactor.redact(p) if isinstance(p, str) else p for p in prompt]
    return UpstreamCall(call.endpoint, params, call.extra), redactor.counts


def _redact_message(redactor: Redactor, message: dict[str, Any]) -> None:
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = redactor.redact(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                part["text"] = redactor.redact(part["text"])
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            function["arguments"] = redactor.redact(function["arguments"])
