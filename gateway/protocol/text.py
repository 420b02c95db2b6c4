"""Strings a client sent that the gateway cannot pass on: lone surrogates.

JSON may carry `"\\ud800"`, a UTF-16 surrogate without its pair: valid JSON, not valid Unicode. No
UTF-8 encoder takes it (the router's tokenizer, orjson, httpx, litellm all raise), so a request
holding one is refused where it is parsed, with a 400 that names where it is
(`messages[0].content contains a lone surrogate`), before it can fail a router batch or count
against a deployment's breaker. One check for every endpoint: it walks whatever JSON it is given.
"""

from __future__ import annotations

from typing import Any


def lone_surrogate(value: Any, path: str = "") -> tuple[str, str] | None:
    """(where, the surrogate as `\\udXXX`) of the first string in `value` (keys included) that
    holds a lone surrogate, or None. `where` reads like `messages[0].content[1].text`."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            bad = _surrogate(item)
            if bad is not None:
                return where or "body", bad
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and (bad := _surrogate(key)) is not None:
                    return (where or "body") + " (a field name)", bad
                children.append((child, name))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None


def _surrogate(text: str) -> str | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"\\u{ord(text[exc.start]):04x}"
    return None
