"""Personal data in one request: which kinds it carries, and the copy a non-local deployment gets.

Detection and placeholders are pure (`policies.pii`); this module knows where text lives in the
OpenAI request shapes: every message's content (a string, or the `text` of its parts), the
arguments of earlier tool calls, a completion's prompt. `kinds` tells the `pii` rule what was found;
`redact` gives the upstream call with each match replaced by a placeholder (`[EMAIL_1]`), the same
value getting the same placeholder in every message. Nothing here logs or keeps what it found.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

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


def kinds(detector: Detector, request: RoutedRequest) -> tuple[str, ...]:
    """The kinds of personal data `request` carries, sorted."""
    return detector.kinds(request_texts(request))


def redact(detector: Detector, call: UpstreamCall) -> tuple[UpstreamCall, dict[str, int]]:
    """`call` with personal data replaced, and how many distinct values of each kind were."""
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
