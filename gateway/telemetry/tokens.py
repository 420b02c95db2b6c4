"""Token counts for cost when an upstream does not report usage.

Upstreams that speak OpenAI's protocol report usage, and the gateway always asks for it on
streams. When one does not, a request must still cost something: we estimate about four
characters a token (English prose with OpenAI-style tokenizers), round up, and mark the record
`tokens_estimated` so the dashboards and the log can tell measured from estimated.
"""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 4


def estimate(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


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
