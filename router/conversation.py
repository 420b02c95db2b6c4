"""A conversation as the router sees it: an ordered tuple of (role, text) turns.

Everything the router scores goes through ``to_conversation``: a bare string is one user turn, an
OpenAI ``messages`` list keeps its roles, and message content may be a string, None, or a list of
parts of which only the text parts count. Feature extractors then read turns, never raw payloads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ROLES = ("system", "developer", "user", "assistant", "tool", "function")

Turn = tuple[str, str]
Conversation = tuple[Turn, ...]
Item = str | Sequence[Mapping[str, Any]]
"""What the router scores: a prompt string or an OpenAI messages list."""


class ConversationError(ValueError):
    """An item that is neither a prompt string nor a messages list; the message says which part."""


def content_text(content: Any) -> str:
    """The text of a message's content: a string, None (empty), or the text parts of a list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and part.get("type") == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise ConversationError("a text part needs a string 'text'")
                texts.append(text)
            elif not isinstance(part, Mapping):
                raise ConversationError(
                    f"a content part must be an object, got {type(part).__name__}"
                )
        return "\n".join(texts)
    raise ConversationError(
        f"message content must be a string, null or a list of parts, got {type(content).__name__}"
    )


def to_conversation(item: Item) -> Conversation:
    """Normalise a prompt string or an OpenAI messages list; raises ConversationError if neither."""
    if isinstance(item, str):
        return (("user", item),)
    if not isinstance(item, Sequence):
        raise ConversationError(
            f"expected a prompt string or a list of messages, got {type(item).__name__}"
        )
    turns: list[Turn] = []
    for index, message in enumerate(item):
        if not isinstance(message, Mapping):
            raise ConversationError(
                f"message {index} must be an object with 'role' and 'content', "
                f"got {type(message).__name__}"
            )
        role = message.get("role")
        if role not in ROLES:
            raise ConversationError(
                f"message {index} has role {role!r}; expected one of {', '.join(ROLES)}"
            )
        turns.append((str(role), content_text(message.get("content"))))
    return tuple(turns)


def last_user_text(conversation: Conversation) -> str:
    """The last user turn (the request being routed); the last turn of any role if no user turn."""
    for role, text in reversed(conversation):
        if role == "user":
            return text
    return conversation[-1][1] if conversation else ""


def system_text(conversation: Conversation) -> str:
    """All system/developer turns joined, in order (empty if none)."""
    return "\n".join(t for r, t in conversation if r in ("system", "developer"))


def full_text(conversation: Conversation) -> str:
    """Every turn's text, in order, joined by blank lines."""
    return "\n\n".join(t for _, t in conversation if t)


def user_turns(conversation: Conversation) -> int:
    """How many user turns the conversation holds."""
    return sum(1 for r, _ in conversation if r == "user")
