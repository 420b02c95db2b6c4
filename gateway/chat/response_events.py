"""A chat completions stream, told as the Responses API's typed events.

`ResponseEvents` is fed the chat chunks of one stream, in order, and returns for each the events a
Responses client expects, in the order OpenAI sends them and the official SDKs accumulate them:

    response.created, response.in_progress,
    per text answer: response.output_item.added (message), response.content_part.added,
        response.output_text.delta ..., response.output_text.done, response.content_part.done,
        response.output_item.done,
    per tool call: response.output_item.added (function_call),
        response.function_call_arguments.delta ..., response.function_call_arguments.done,
        response.output_item.done,
    response.completed (or response.incomplete when the upstream stopped at its length limit).

A stream the upstream breaks ends with an `error` event and `response.failed`. Pure: no I/O, no
clock; `gateway.chat.response_stream` relays the bytes and keeps the counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.chat.translate import (
    ResponseShell,
    function_call_item,
    message_item,
    reasoning_item,
    usage,
)
from gateway.protocol.openai import JSON
from gateway.protocol.responses import new_id


@dataclass
class _Open:
    """The output item being streamed: a message's text, a reasoning text or a tool call."""

    index: int
    kind: str
    id: str
    text: list[str] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    tool_index: int | None = None


class ResponseEvents:
    """The events for one stream. Call `chunk` for each chat chunk, then `completed` (or `failed`);
    `response` is the final object once `completed` returned."""

    def __init__(self, shell: ResponseShell) -> None:
        self._shell = shell
        self._sequence = 0
        self._started = False
        self._output: list[JSON] = []
        self._open: _Open | None = None
        self._finish: str | None = None
        self.chat_usage: JSON | None = None
        self.response: JSON | None = None

    # --- input ----------------------------------------------------------------------------------

    def chunk(self, chunk: JSON) -> list[JSON]:
        events = self._start()
        if chunk.get("usage"):
            self.chat_usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # `n` > 1 has no Responses equivalent: the first choice answers
            delta = choice.get("delta") or {}
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought:
                events += self._text("reasoning", thought)
            text = delta.get("content")
            if isinstance(text, str) and text:
                events += self._text("message", text)
            for call in delta.get("tool_calls") or ():
                events += self._tool_call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def completed(self, prompt: int, completion: int) -> list[JSON]:
        """The closing events, with the token counts the relay settled on."""
        events = self._start() + self._close()
        self.response = self._shell.finished(
            list(self._output), usage(prompt, completion, self.chat_usage), self._finish
        )
        kind = "response.completed"
        if self.response["status"] == "incomplete":
            kind = "response.incomplete"
        return [*events, self._event(kind, response=self.response)]

    def failed(self, message: str, code: str) -> list[JSON]:
        """The closing events of a stream the upstream broke: `error`, then `response.failed`
        with what was generated so far."""
        events = self._start()
        body = self._shell.body("failed", list(self._output))
        body["error"] = {"code": "server_error", "message": message}
        events.append(self._event("error", code=code, message=message, param=None))
        events.append(self._event("response.failed", response=body))
        return events

    # --- items ----------------------------------------------------------------------------------

    def _start(self) -> list[JSON]:
        if self._started:
            return []
        self._started = True
        body = self._shell.body("in_progress", [])
        return [
            self._event("response.created", response=body),
            self._event("response.in_progress", response=body),
        ]

    def _text(self, kind: str, text: str) -> list[JSON]:
        events: list[JSON] = []
        item = self._open
        if item is None or item.kind != kind:
            events += self._close()
            prefix = "msg" if kind == "message" else "rs"
            item = self._open = _Open(len(self._output), kind, new_id(prefix))
            self._output.append({})  # its place, filled when it closes
            events.append(self._added(item))
            events.append(self._part("response.content_part.added", item, ""))
        item.text.append(text)
        delta = (
            "response.output_text.delta" if kind == "message" else "response.reasoning_text.delta"
        )
        extra: JSON = {"logprobs": []} if kind == "message" else {}
        events.append(
            self._event(
                delta,
                item_id=item.id,
                output_index=item.index,
                content_index=0,
                delta=text,
                **extra,
            )
        )
        return events

    def _tool_call(self, call: JSON) -> list[JSON]:
        events: list[JSON] = []
        position = call.get("index", 0)
        function = call.get("function") or {}
        item = self._open
        if item is None or item.kind != "function_call" or item.tool_index != position:
            events += self._close()
            item = self._open = _Open(
                len(self._output),
                "function_call",
                new_id("fc"),
                call_id=call.get("id") or new_id("call"),
                name=function.get("name") or "",
                tool_index=position,
            )
            self._output.append({})
            events.append(self._added(item))
        elif function.get("name") and not item.name:
            item.name = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.text.append(arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item.id,
                    output_index=item.index,
                    delta=arguments,
                )
            )
        return events

    def _close(self) -> list[JSON]:
        """The done events of the open item, if any; its final form takes its place in output."""
        item, self._open = self._open, None
        if item is None:
            return []
        text = "".join(item.text)
        where = {"item_id": item.id, "output_index": item.index}
        events: list[JSON] = []
        if item.kind == "function_call":
            done = function_call_item(item.id, item.call_id, item.name, text, "completed")
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    **where,
                    name=item.name,
                    arguments=text,
                )
            )
        else:
            if item.kind == "message":
                done = message_item(item.id, text)
                events.append(
                    self._event(
                        "response.output_text.done", **where, content_index=0, text=text,
                        logprobs=[],
                    )
                )  # fmt: skip
            else:
                done = {**reasoning_item(item.id, text), "status": "completed"}
                events.append(
                    self._event("response.reasoning_text.done", **where, content_index=0, text=text)
                )
            events.append(self._part("response.content_part.done", item, text))
        self._output[item.index] = done
        events.append(self._event("response.output_item.done", output_index=item.index, item=done))
        return events

    def _added(self, item: _Open) -> JSON:
        if item.kind == "function_call":
            first = function_call_item(item.id, item.call_id, item.name, "", "in_progress")
        elif item.kind == "message":
            first = message_item(item.id, "", status="in_progress")
        else:
            first = {**reasoning_item(item.id, ""), "content": [], "status": "in_progress"}
        return self._event("response.output_item.added", output_index=item.index, item=first)

    def _part(self, kind: str, item: _Open, text: str) -> JSON:
        if item.kind == "message":
            part: JSON = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        else:
            part = {"type": "reasoning_text", "text": text}
        return self._event(
            kind, item_id=item.id, output_index=item.index, content_index=0, part=part
        )

    def _event(self, kind: str, **fields: Any) -> JSON:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event
