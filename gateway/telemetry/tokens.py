"""Token counts the gateway estimates from characters, each estimate named for its purpose.

No tokenizer runs in the gateway: the upstream's own count (`usage`) is the truth. Two estimates
stand in for it where it is not there:

- `estimate`: what a request cost when an upstream reports no usage. Upstreams that speak OpenAI's
  protocol report usage, and the gateway always asks for it on streams; when one does not, a
  request must still cost something. About four characters a token (English prose with
  OpenAI-style tokenizers), rounded up; the record is marked `tokens_estimated` so dashboards and
  the log can tell measured from estimated.
- `reservation_estimate`: what a prompt may use, reserved against the key's tpm and budget before
  the request goes upstream (`gateway.chat.plan`). A reservation must not be smaller than the real
  use, so it over-estimates: three characters a token plus the chat template's overhead.
"""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 4
"""For `estimate`: a typical count."""
RESERVE_CHARS_PER_TOKEN = 3
RESERVE_OVERHEAD_TOKENS = 16
"""For `reservation_estimate`: an over-estimate, and the chat template's tokens."""


def estimate(chars: int) -> int:
    """Tokens in `chars` characters of text, for cost when the upstream reports none."""
    return -(-chars // CHARS_PER_TOKEN)


def reservation_estimate(chars: int) -> int:
    """Tokens a prompt of `chars` characters may use at most, before any tokenizer runs."""
    return chars // RESERVE_CHARS_PER_TOKEN + RESERVE_OVERHEAD_TOKENS


def completion_chars(body: dict[str, Any]) -> int:
    """Characters the model generated in a JSON response: text, content and tool arguments."""
    total = 0
    for choice in body.get("choices") or ():
        text = choice.get("text")
        message = choice.get("message") or {}
        for value in (text, message.get("content")):
            if isinstance(value, str):
                total += len(value)
        for call in message.get("tool_calls") or ():
            total += len(str((call.get("function") or {}).get("arguments") or ""))
    return total


def reported(usage: Any) -> bool:
    """Whether an upstream's `usage` counts anything: litellm fills in zeros when the server
    sent none, which would make a real answer free."""
    return isinstance(usage, dict) and any(
        usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
    )


def usage_of(body: dict[str, Any], prompt_chars: int) -> tuple[int, int, bool]:
    """(prompt tokens, completion tokens, estimated) for a JSON response."""
    usage = body.get("usage") or {}
    if reported(usage):
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), False
    return estimate(prompt_chars), estimate(completion_chars(body)), True
