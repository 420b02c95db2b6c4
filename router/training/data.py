"""Training examples and the generic JSONL format any user can produce from their own traffic.

An Example is one routed request with the outcome of the weak and the strong model on it, both in
[0, 1] (1 = correct or the best judge score). The generic format is one JSON object per line:
``prompt`` (a string) or ``messages`` (an OpenAI messages list), ``weak``, ``strong``, and an
optional ``source`` naming where the row came from (evaluation reports each source apart). Loaders
stop at the first bad line with ``FILE:LINE: what was wrong, what is expected``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.conversation import Conversation, ConversationError, to_conversation
from router.errors import DataError


@dataclass(frozen=True)
class Example:
    """One request with both models' outcomes.

    ``source`` is the unit evaluation reports (one benchmark, one task); ``family`` names the
    benchmark it was drawn from, so that leave-one-source-out also withholds the same benchmark
    seen through another dataset (RouteLLM's MMLU and LLMRouter's mmlu are one family).
    ``small``/``large``: mean outcome of a panel of small / large models where the data scores more
    than the pair (LLMRouter's nine models); None otherwise. Only training labels read them.
    """

    conversation: Conversation
    weak: float
    strong: float
    source: str
    family: str
    small: float | None = None
    large: float | None = None


def outcome(value: Any, field: str, path: Path, line: int | None) -> float:
    """Check and convert one outcome: a number (or bool) in [0, 1]."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if not isinstance(value, int | float) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise DataError(path, line, f"{field!r} is {value!r}; expected a number in [0, 1]")
    return float(value)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; a non-object line is a DataError."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataError(
            path, None, f"cannot read the file ({exc.strerror}); expected a JSONL file"
        ) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataError(
                    path, number, f"not valid JSON ({exc.msg}); expected one object per line"
                ) from None
            if not isinstance(row, dict):
                raise DataError(
                    path, number, f"got a JSON {type(row).__name__}; expected an object"
                )
            yield number, row


def conversation_of(row: Mapping[str, Any], path: Path, line: int) -> Conversation:
    """The conversation of a JSONL row: its ``prompt`` string or its ``messages`` list."""
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise DataError(
                path, line, "'messages' must be a non-empty list of {role, content} objects"
            )
        try:
            return to_conversation(messages)
        except ConversationError as exc:
            raise DataError(path, line, str(exc)) from None
    if "prompt" in row:
        if not isinstance(row["prompt"], str):
            raise DataError(
                path, line, f"'prompt' is a {type(row['prompt']).__name__}; expected a string"
            )
        return to_conversation(row["prompt"])
    raise DataError(path, line, "missing 'prompt' or 'messages'; expected one of them")


def load_jsonl(path: str | Path, default_source: str | None = None) -> list[Example]:
    """Load the generic format; a row without ``source`` gets ``default_source`` or the stem."""
    path = Path(path)
    fallback = default_source or path.stem
    examples = []
    for line, row in read_jsonl(path):
        conversation = conversation_of(row, path, line)
        for field in ("weak", "strong"):
            if field not in row:
                raise DataError(path, line, f"missing {field!r}; expected a number in [0, 1]")
        source = row.get("source", fallback)
        if not isinstance(source, str) or not source:
            raise DataError(path, line, f"'source' is {source!r}; expected a non-empty string")
        examples.append(
            Example(
                conversation=conversation,
                weak=outcome(row["weak"], "weak", path, line),
                strong=outcome(row["strong"], "strong", path, line),
                source=source,
                family=source,
            )
        )
    if not examples:
        raise DataError(
            path, None, "no rows; expected JSONL with 'prompt' or 'messages', 'weak', 'strong'"
        )
    return examples


def load_prompts(path: str | Path) -> list[Conversation]:
    """Prompts to score (``prompt`` or ``messages`` per line, outcomes not needed), in order."""
    path = Path(path)
    return [conversation_of(row, path, line) for line, row in read_jsonl(path)]
