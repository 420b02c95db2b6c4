"""A deployment in the gateway's configuration: one model behind one endpoint, its price, what it
accepts, how `tiergate up` serves it and when its circuit opens; and what `backend: auto` means.

`backend: auto` (the default): servers that speak OpenAI's protocol themselves (OpenAI, vLLM, ...)
take the direct pooled backend (`gateway.upstream.openai`: about 10x the requests/s of litellm on
the same machine, bench/RESULTS.md); every other provider (Anthropic, Bedrock, Vertex...) needs
litellm's translation. A `backend:` written in the config wins. The rest of the file's shape
(tiers, keys, limits, policies) is `gateway.config.schema`'s.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DIRECT_PREFIXES = ("openai/", "hosted_vllm/", "vllm/")
"""Model prefixes `auto` sends to the direct backend."""


def auto_backend(model: str) -> Literal["litellm", "openai-compatible"]:
    """What `backend: auto` means for a deployment's `model` string."""
    return "openai-compatible" if model.startswith(DIRECT_PREFIXES) else "litellm"


class Strict(BaseModel):
    """The config's models: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(Strict):
    """USD per million tokens. A local deployment may give a GPU-hour price and a throughput."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)
    gpu_hour_usd: float | None = Field(None, ge=0)
    tokens_per_second: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _gpu_pricing_is_complete(self) -> Price:
        if (self.gpu_hour_usd is None) != (self.tokens_per_second is None):
            raise ValueError("gpu_hour_usd and tokens_per_second go together")
        return self

    def per_token(self) -> tuple[float, float]:
        """(input, output) USD per token; GPU-hour pricing charges every token alike."""
        if self.gpu_hour_usd is not None and self.tokens_per_second is not None:
            per = self.gpu_hour_usd / 3600.0 / self.tokens_per_second
            return per, per
        return self.input_per_mtok / 1e6, self.output_per_mtok / 1e6

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        per_in, per_out = self.per_token()
        return prompt_tokens * per_in + completion_tokens * per_out


class Capabilities(Strict):
    """What a deployment accepts. The gateway sends it only requests it can take: a request with
    images goes only to `vision` deployments, one with `input_audio` parts only to `audio` ones
    (`gateway.chat.capabilities`)."""

    tools: bool = True
    max_context_tokens: int = Field(8192, gt=0)
    vision: bool = False
    """Takes image parts (`image_url`, the Responses API's `input_image`)."""
    audio: bool = False
    """Takes `input_audio` parts."""
    embeddings: bool = False
    """Serves `POST /v1/embeddings` (called by its name; it need not belong to a tier)."""
    responses: bool = False
    """Serves `POST /v1/responses` itself (OpenAI, vLLM): the Responses API is sent to it as it
    came, built-in tools included, instead of being translated to chat completions."""
    reasoning: bool = False
    """Takes `reasoning_effort` (a Responses request's `reasoning.effort` is passed on to it)."""


class LocalServe(Strict):
    """How `tiergate up` starts a vLLM server for this deployment (absent: someone else runs it)."""

    model_path: str
    port: int = Field(gt=0, lt=65536)
    host: str = "127.0.0.1"
    served_model_name: str | None = None
    max_model_len: int = Field(2048, gt=0)
    kv_cache_gib: float = Field(1.0, gt=0)
    extra_args: tuple[str, ...] = ()


class BreakerSettings(Strict):
    """When a deployment stops being tried: `failures` within `window_s` open its circuit for
    `cooldown_s`, then one probe request decides whether it closes again."""

    failures: int = Field(5, ge=1)
    window_s: float = Field(30.0, gt=0)
    cooldown_s: float = Field(15.0, gt=0)


class Deployment(Strict):
    """One model behind one endpoint. `model` is a litellm model string (`openai/gpt-4o-mini`).

    `backend: auto` (the default) is resolved when the config is read (`auto_backend` above),
    so `backend` is always `litellm` or `openai-compatible` afterwards.
    """

    model: str = Field(min_length=1)
    api_base: str | None = None
    api_key_env: str | None = None
    backend: Literal["auto", "litellm", "openai-compatible"] = "auto"
    price: Price = Price()
    capabilities: Capabilities = Capabilities()
    timeout_s: float = Field(120.0, gt=0)
    """Total time for one attempt: a whole JSON answer, or a whole stream."""
    connect_timeout_s: float = Field(5.0, gt=0)
    first_byte_timeout_s: float | None = Field(None, gt=0)
    """Time to a stream's first chunk; None: `timeout_s`. (A JSON answer arrives whole, so
    `timeout_s` bounds it.)"""
    retries: int = Field(0, ge=0, le=5)
    """Extra attempts on this deployment, with backoff, before falling back to the next one."""
    max_concurrency: int | None = Field(None, ge=1)
    max_queue: int = Field(0, ge=0)
    queue_timeout_s: float = Field(5.0, gt=0)
    breaker: BreakerSettings = BreakerSettings()
    serve: LocalServe | None = None
    local: bool = False
    """The deployment runs where personal data may go (your own machine or network): a policy
    with `pii: keep_local` sends requests carrying personal data only to local deployments."""

    @field_validator("api_base", "api_key_env", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """`${VAR:-}` substitutes to "", which means: not set."""
        return None if value == "" else value

    @model_validator(mode="before")
    @classmethod
    def _resolve_auto_backend(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("backend", "auto") != "auto":
            return data
        model = data.get("model")
        if not isinstance(model, str):
            return data  # the field's own error names it
        return {**data, "backend": auto_backend(model)}

    @model_validator(mode="after")
    def _native_responses_are_direct(self) -> Deployment:
        if self.capabilities.responses and self.backend != "openai-compatible":
            raise ValueError(
                "capabilities.responses (the Responses API served natively) needs "
                "backend: openai-compatible; with litellm, Responses requests are translated "
                "to chat completions (leave responses false)"
            )
        return self
