"""A fake judge for shadow judging: an upstream whose verdict depends on the prompt it reads.

`prefer_marked(marker, when)` (a `Script`'s reply) answers each pairwise prompt
(`gateway.chat.shadow.judge_messages`) with the position of the answer containing `marker` when
`when(request)` holds for the request text, and `tie` otherwise: a judge that prefers the large
tier's answers for one kind of request only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.support.upstream import Reply

_PARTS = re.compile(
    r"\[Request\]\n(?P<request>.*)\n\n\[Answer A\]\n(?P<a>.*)\n\n\[Answer B\]\n(?P<b>.*)\n\n", re.S
)


def prefer_marked(
    marker: str, when: Callable[[str], bool] = lambda request: True
) -> Callable[[dict[str, Any]], Reply]:
    def respond(body: dict[str, Any]) -> Reply:
        prompt = str(body["messages"][-1]["content"])
        parts = _PARTS.search(prompt)
        if parts is None:
            return Reply(text="tie")
        if not when(parts["request"]):
            return Reply(text="tie", prompt_tokens=50, completion_tokens=1)
        choice = "A" if marker in parts["a"] else "B"
        return Reply(text=choice, prompt_tokens=50, completion_tokens=1)

    return respond
