"""Which backend a deployment gets when its config says `backend: auto` (the default).

Servers that speak OpenAI's protocol themselves (OpenAI, vLLM, ...) take the direct pooled backend
(`gateway.upstream.openai`: about 10x the requests/s of litellm on the same machine,
bench/RESULTS.md); every other provider (Anthropic, Bedrock, Vertex...) needs litellm's
translation. A `backend:` written in the config wins.
"""

from __future__ import annotations

from typing import Literal

DIRECT_PREFIXES = ("openai/", "hosted_vllm/", "vllm/")
"""Model prefixes `auto` sends to the direct backend."""


def auto_backend(model: str) -> Literal["litellm", "openai-compatible"]:
    """What `backend: auto` means for a deployment's `model` string."""
    return "openai-compatible" if model.startswith(DIRECT_PREFIXES) else "litellm"
