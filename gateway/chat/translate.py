"""Translating the Responses API to chat completions and back: the one place that knows both.

A deployment that does not serve `/v1/responses` itself is reached through chat completions, so
routing works whatever the tiers speak. `to_chat` turns a Responses request (with the items of the
conversation it continues) into a chat completions request; `response_from_chat` turns a chat
completion back into a `response` object. The streamed direction is `gateway.chat.response_events`,
built on `ResponseShell` and the item builders below.

What cannot be carried by chat completions (built-in tools such as `web_search` or `file_search`,
hosted tool choices, items like `computer_call`) is not an error here: it is collected in
`Translation.native_only`, and the request may then only go to a deployment that serves the
Responses API natively (`capabilities.responses`), which gets the request as it came.

Mapping, request side: `instructions` -> a system message; `input` items -> messages (`input_text`
-> text parts, `input_image` -> `image_url`, `input_audio` -> `input_audio`, `input_file` ->
`file`); consecutive `function_call` items -> one assistant message's `tool_calls`;
`function_call_output` -> a `tool` message; `reasoning` items are dropped (chat has no place for
them); function `tools` -> chat tools; `text.format` -> `response_format`; `max_output_tokens` ->
`max_tokens` (`max_completion_tokens` for a reasoning deployment); `reasoning.effort` ->
`reasoning_effort` for deployments with `capabilities.reasoning` only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import JSON, ChatCompletionRequest
from gateway.protocol.responses import ResponsesRequest, new_id

CHAT_FIELDS = ("temperature", "top_p", "parallel_tool_calls", "user", "service_tier")
CHAT_FIELDS_IF_SET = ("safety_identifier", "prompt_cache_key")
"""Responses fields that mean the same in chat completions and pass as they are."""
RESPONSES_ONLY = frozenset(
    {
        "input", "instructions", "include", "max_output_tokens", "max_tool_calls", "metadata",
        "previous_response_id", "reasoning", "store", "stream_options", "text", "tool_choice",
        "tools", "top_logprobs", "truncation", "background", "conversation", "prompt",
    }
)  # fmt: skip
"""Fields a chat completions upstream would not know: translated above, or dropped."""

_FINISH = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass
class Translation:
    """A Responses request as chat completions, and what chat completions cannot carry."""

    chat: ChatCompletionRequest
    items: list[JSON]
    """The conversation's input items: those it continues (`previous_response_id`), then the
    request's own (a string input as one user message)."""
    native_only: list[str] = field(default_factory=list)
    """What needs a deployment serving the Responses API natively, as `tool 'web_search'`."""


# --- request -------------------------------------------------------------------------------------


def input_items(request: ResponsesRequest, earlier: list[JSON]) -> list[JSON]:
    """Every input item of the conversation: `earlier` (the stored conversation this request
    continues, its outputs included), then this request's input."""
    own = request.input
    if own is None:
        items: list[JSON] = []
    elif isinstance(own, str):
        items = [{"type": "message", "role": "user", "content": own}]
    else:
        items = list(own)
    return [*earlier, *items]


def to_chat(request: ResponsesRequest, earlier: Sequence[JSON] = ()) -> Translation:
    """The chat completions request for `request`, continuing the conversation `earlier`."""
    items = input_items(request, list(earlier))
    native_only: list[str] = []
    messages: list[JSON] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    for index, item in enumerate(items):
        _add_item(messages, item, index, native_only)
    body: JSON = {"model": request.model, "messages": messages or [{"role": "user", "content": ""}]}
    data = request.model_dump(exclude_unset=True)
    for name in CHAT_FIELDS:
        if data.get(name) is not None:
            body[name] = data[name]
    for name in CHAT_FIELDS_IF_SET:
        if data.get(name):
            body[name] = data[name]
    if request.max_output_tokens is not None:
        body["max_tokens"] = request.max_output_tokens
    if request.stream:
        body["stream"] = True
    tools = [_tool(t, native_only) for t in request.tools or ()]
    if any(t is not None for t in tools):
        body["tools"] = [t for t in tools if t is not None]
    if request.tool_choice is not None:
        choice = _tool_choice(request.tool_choice, native_only)
        if choice is not None:
            body["tool_choice"] = choice
    body.update(_text_options(request.text))
    for name, value in (request.model_extra or {}).items():
        if name not in RESPONSES_ONLY:  # unknown to us: passes through, as on chat completions
            body[name] = value
    try:
        chat = ChatCompletionRequest.model_validate(body)
    except ValueError as exc:  # a translated value our chat model refuses: the client's input
        raise GatewayError(400, f"input cannot be read: {exc}", code="invalid_request") from None
    return Translation(chat, items, native_only)


def chat_params(translation: Translation, request: ResponsesRequest, *, reasoning: bool) -> JSON:
    """Per-deployment choices: `reasoning.effort` and `max_completion_tokens` only for a
    deployment that takes reasoning options (`capabilities.reasoning`)."""
    extra: JSON = {}
    effort = (request.reasoning or {}).get("effort")
    if reasoning and effort is not None:
        extra["reasoning_effort"] = effort
    if reasoning and request.max_output_tokens is not None:
        extra["max_completion_tokens"] = request.max_output_tokens
    return extra


def _add_item(messages: list[JSON], item: Any, index: int, native_only: list[str]) -> None:
    if not isinstance(item, dict):
        raise _bad(index, "must be an object", item)
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "message":
        messages.append(_message(item, index))
    elif kind == "function_call":
        call = {
            "id": item.get("call_id") or item.get("id") or new_id("call"),
            "type": "function",
            "function": {"name": item.get("name", ""), "arguments": item.get("arguments", "")},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":  # the same turn: one message
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output", "")
        content = output if isinstance(output, str) else _joined_text(output)
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": content})
    elif kind == "reasoning":
        return  # chat completions has no place for a previous turn's reasoning
    else:
        native_only.append(f"input item '{kind}'")


def _message(item: JSON, index: int) -> JSON:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise _bad(index, "role must be one of user, system, developer, assistant", role)
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _bad(index, "content must be a string or a list of parts", content)
    if role == "assistant":  # chat's assistant content is text: output_text and refusal parts
        return {"role": role, "content": _joined_text(content)}
    return {"role": role, "content": [_part(p, index) for p in content]}


def _part(part: Any, index: int) -> JSON:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text", "")}
    if kind == "input_image":
        if not part.get("image_url"):
            raise _bad(index, "input_image needs image_url (a URL or a data: URL; file ids "
                       "are not kept by this gateway)", part.get("file_id"))  # fmt: skip
        image: JSON = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": part.get("input_audio")}
    if kind == "input_file":
        keep = ("file_data", "file_id", "filename")
        return {"type": "file", "file": {k: part[k] for k in keep if part.get(k)}}
    raise _bad(index, "content parts must be input_text, input_image, input_audio or "
               "input_file", kind)  # fmt: skip


def _joined_text(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    texts = [p.get("text") or p.get("refusal") or "" for p in parts or () if isinstance(p, dict)]
    return "".join(texts)


def _tool(tool: JSON, native_only: list[str]) -> JSON | None:
    if tool.get("type") != "function":
        native_only.append(f"tool '{tool.get('type')}'")
        return None
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": "function", "function": function}


def _tool_choice(choice: str | JSON, native_only: list[str]) -> str | JSON | None:
    if isinstance(choice, str):
        return choice
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if kind == "allowed_tools":
        tools = [
            {"type": "function", "function": {"name": t.get("name")}}
            for t in choice.get("tools") or ()
            if t.get("type") == "function"
        ]
        allowed = {"mode": choice.get("mode"), "tools": tools}
        return {"type": "allowed_tools", "allowed_tools": allowed}
    native_only.append(f"tool_choice '{kind}'")
    return None


def _text_options(text: JSON | None) -> JSON:
    if not text:
        return {}
    out: JSON = {}
    fmt = text.get("format") or {}
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "description", "schema", "strict") if k in fmt}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif kind == "json_object":
        out["response_format"] = {"type": "json_object"}
    if text.get("verbosity") is not None:
        out["verbosity"] = text["verbosity"]
    return out


def _bad(index: int, what: str, got: Any) -> GatewayError:
    shown = repr(got)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return GatewayError(
        400, f"input[{index}]: {what}; got {shown}", code="invalid_request", param=f"input.{index}"
    )


# --- response ------------------------------------------------------------------------------------


@dataclass
class ResponseShell:
    """The fields of a `response` object that come from the request, not from the answer."""

    request: ResponsesRequest
    id: str = field(default_factory=lambda: new_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))
    model: str = ""
    store: bool = True

    def body(self, status: str, output: list[JSON], usage: JSON | None = None) -> JSON:
        req = self.request
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "model": self.model or req.model,
            "output": output,
            "parallel_tool_calls": req.parallel_tool_calls is not False,
            "previous_response_id": req.previous_response_id,
            "reasoning": req.reasoning or {"effort": None, "summary": None},
            "store": self.store,
            "temperature": req.temperature,
            "text": req.text or {"format": {"type": "text"}},
            "tool_choice": req.tool_choice if req.tool_choice is not None else "auto",
            "tools": req.tools or [],
            "top_p": req.top_p,
            "truncation": req.truncation or "disabled",
            "usage": usage,
            "user": req.user,
            "metadata": req.metadata or {},
        }

    def finished(self, output: list[JSON], usage: JSON, finish_reason: str | None) -> JSON:
        """The final object: `completed`, or `incomplete` with the reason (`max_output_tokens`
        when the upstream stopped at its length limit, `content_filter`)."""
        reason = _FINISH.get(finish_reason or "")
        body = self.body("incomplete" if reason else "completed", output, usage)
        if reason:
            body["incomplete_details"] = {"reason": reason}
        return body


def usage(prompt: int, completion: int, chat_usage: JSON | None = None) -> JSON:
    """A Responses `usage` from token counts (and a chat `usage`'s details, when it has them)."""
    chat_usage = chat_usage or {}
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    thought = (chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": thought},
        "total_tokens": prompt + completion,
    }


def message_item(item_id: str, text: str, status: str = "completed") -> JSON:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [part] if status == "completed" else [],
    }


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> JSON:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def reasoning_item(item_id: str, text: str) -> JSON:
    content = [{"type": "reasoning_text", "text": text}]
    return {"type": "reasoning", "id": item_id, "summary": [], "content": content}


def output_from_chat(message: JSON) -> list[JSON]:
    """A chat answer's message as Responses output items: reasoning, text, then tool calls."""
    output: list[JSON] = []
    thought = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(thought, str) and thought:
        output.append(reasoning_item(new_id("rs"), thought))
    text = message.get("content")
    if isinstance(text, str) and text:
        output.append(message_item(new_id("msg"), text))
    if message.get("refusal"):
        refusal = {"type": "refusal", "refusal": message["refusal"]}
        output.append({**message_item(new_id("msg"), ""), "content": [refusal]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        output.append(
            function_call_item(
                new_id("fc"),
                call.get("id") or new_id("call"),
                function.get("name", ""),
                function.get("arguments") or "",
                "completed",
            )
        )
    return output


def response_from_chat(shell: ResponseShell, body: JSON, prompt: int, completion: int) -> JSON:
    """The `response` object for a chat completion `body`, with the counted tokens."""
    choice = (body.get("choices") or [{}])[0]
    output = output_from_chat(choice.get("message") or {})
    counted = usage(prompt, completion, body.get("usage"))
    return shell.finished(output, counted, choice.get("finish_reason"))
