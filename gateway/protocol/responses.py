"""The Responses API (`POST /v1/responses`) as the gateway accepts it, and its stream's frames.

Fields follow the order of OpenAI's reference (the `openai` SDK's `ResponseCreateParams`). As in
`gateway.protocol.openai`, every model allows extra fields, which pass through to the upstream;
nested objects the gateway translates (`input` items, `tools`, `text`, `reasoning`) are kept as
plain JSON and read by `gateway.chat.translate`, which owns what each one means for a deployment
that only speaks chat completions. `sse_event` is the frame of one typed stream event.
"""

from __future__ import annotations

import uuid

from pydantic import Field, model_validator

from gateway.protocol.openai import JSON, _PassThrough, dumps

UNSUPPORTED = {
    "background": "background responses",
    "conversation": "conversations (use previous_response_id)",
    "prompt": "stored prompt templates",
}
"""Fields the gateway refuses with a 400 when set: they need state the gateway does not keep."""


class ResponsesRequest(_PassThrough):
    """`POST /v1/responses`. `model` is `auto`, `auto:<policy>` or a deployment name."""

    model: str = Field(min_length=1)
    input: str | list[JSON] | None = None
    instructions: str | None = None
    include: list[str] | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    max_tool_calls: int | None = Field(None, ge=1)
    metadata: dict[str, str] | None = None
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    prompt_cache_key: str | None = None
    reasoning: JSON | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    store: bool | None = None
    """Keep the response for `previous_response_id` and `GET /v1/responses/{id}`; OpenAI's
    default is true, and so is ours unless the operator turned storage off."""
    stream: bool | None = False
    stream_options: JSON | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    text: JSON | None = None
    tool_choice: str | JSON | None = None
    tools: list[JSON] | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    top_p: float | None = Field(None, ge=0, le=1)
    truncation: str | None = None
    user: str | None = None

    @model_validator(mode="after")
    def _has_input(self) -> ResponsesRequest:
        if self.input in (None, "", []) and self.previous_response_id is None:
            raise ValueError("give input (a string or a list of items)")
        return self


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: `resp_...`, `msg_...`, `fc_...`."""
    return f"{prefix}_{uuid.uuid4().hex}"


def sse_event(event: JSON) -> bytes:
    """One typed stream event as OpenAI frames it: its `type` as the SSE event name."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + dumps(event) + b"\n\n"
