"""The OpenAI wire protocol as the gateway accepts it.

Fields follow the order of OpenAI's API reference. Every model allows extra fields: what we do not
know (vLLM's `top_k`, `guided_json`, `chat_template_kwargs`, a provider's newest option) passes
through to the backend untouched, and is logged once per field name at debug level. Nested objects
the gateway never inspects (`tools`, `response_format`, `logit_bias` ...) are kept as plain JSON so
that they reach the upstream byte for byte.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)

JSON = dict[str, Any]


def dumps(payload: Any) -> bytes:
    """`payload` as compact UTF-8 JSON: orjson, or, for the valid JSON orjson refuses to write
    (an integer past 64 bits such as `seed: 10**20`, nesting past 254 levels), the standard
    library's encoder, so that what a client sent is relayed exactly."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")


class _PassThrough(BaseModel):
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _note_unknown_fields(self) -> _PassThrough:
        if self.model_extra:
            log.debug("passing unknown fields through: %s", sorted(self.model_extra))
        return self


class TextPart(_PassThrough):
    type: str
    text: str | None = None


class ChatMessage(_PassThrough):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[JSON] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text, parts joined; images and audio parts count as nothing."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if p.text)


class StreamOptions(_PassThrough):
    include_usage: bool | None = None


class ChatCompletionRequest(_PassThrough):
    """`POST /v1/chat/completions`. `model` is `auto`, `auto:<policy>` or a deployment name."""

    messages: list[ChatMessage] = Field(min_length=1)
    model: str = Field(min_length=1)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1, le=128)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    response_format: JSON | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    tools: list[JSON] | None = None
    tool_choice: str | JSON | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None

    def routing_items(self) -> list[JSON]:
        """The conversation as plain dicts, which is what the router scores."""
        return [{"role": m.role, "content": m.text()} for m in self.messages]

    def prompt_chars(self) -> int:
        return sum(len(m.text()) for m in self.messages)


class CompletionRequest(_PassThrough):
    """`POST /v1/completions` (legacy text completions)."""

    model: str = Field(min_length=1)
    prompt: str | list[str] = Field(min_length=1)
    best_of: int | None = Field(None, ge=1)
    echo: bool | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: int | None = Field(None, ge=0, le=5)
    max_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1, le=128)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    user: str | None = None

    def routing_items(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else "\n".join(self.prompt)

    def prompt_chars(self) -> int:
        return len(self.routing_items())


RoutedRequest = ChatCompletionRequest | CompletionRequest


class EmbeddingsRequest(_PassThrough):
    """`POST /v1/embeddings`. `model` names a deployment with `capabilities.embeddings`."""

    input: str | list[str] | list[int] | list[list[int]] = Field(min_length=1)
    model: str = Field(min_length=1)
    dimensions: int | None = Field(None, ge=1)
    encoding_format: Literal["float", "base64"] | None = None
    user: str | None = None

    def prompt_chars(self) -> int:
        """Characters to embed; a token id counts as four (the size `estimate` assumes)."""
        items = [self.input] if isinstance(self.input, str) else self.input
        return sum(len(i) if isinstance(i, str) else 4 * (len(i) if isinstance(i, list) else 1)
                   for i in items)  # fmt: skip


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "tiergate"
    tiergate: JSON = Field(default_factory=dict)
    """What this name does: routing policy, or a deployment with its tier and availability."""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
