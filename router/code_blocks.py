"""Fenced code blocks of an answer, and whether the checkable ones parse; strict JSON parsing.

Used by the gateway's answer checks (``gateway.chat.checks``: ``code_syntax``, ``json_schema``,
``tool_arguments``) and by the verifier's features. Python parses with ``ast`` (console prompts
``>>>`` unwrapped, IPython ``%``/``!`` lines ignored, comment-only bodies accepted), JSON with the
standard library (NaN and Infinity refused; object members without their braces, ``...``
placeholders and ``//`` comments tolerated), YAML with PyYAML's safe loader (templated blocks
skipped). Other languages are not judged.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
import warnings
from collections.abc import Iterator
from typing import Any


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str) -> tuple[bool, Any]:
    """(True, value) for strict JSON text (no NaN or Infinity), (False, reason) otherwise."""
    try:
        return True, json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return False, str(exc)[:200]


_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*([^\s`]*)[^\n`]*$")
_PY = frozenset({"python", "py", "python3", "py3"})
_YAML = frozenset({"yaml", "yml"})
_JSON = frozenset({"json"})
_JSON_COMMENT = re.compile(r"(^|\s)//")


def fenced_blocks(text: str) -> Iterator[tuple[str, str]]:
    """(language, code) of each fenced block, indentation of its fence removed; an unclosed
    block runs to the end of the text. The language is the info string's first word, lowercased.
    """
    if "```" not in text and "~~~" not in text:
        return
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence, info = opening.groups()
        body: list[str] = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            line = lines[i]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            i += 1
        i += 1
        yield info.lower().lstrip("{.").rstrip("}"), "\n".join(body)


def python_error(code: str) -> str | None:
    """Why ``code`` (a Python snippet) does not parse, or None.

    Console sessions (``>>>`` prompts) are unwrapped and IPython ``%``/``!`` lines ignored; a
    skeleton whose bodies are only comments (``def f():`` then ``# your code here``), which
    strong models write too, is accepted.
    """
    lines = code.split("\n")
    if any(line.startswith(">>>") for line in lines):
        lines = [line[4:] for line in lines if line.startswith((">>>", "..."))]
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in lines]
    source = textwrap.dedent("\n".join(lines))
    if not source.strip():
        return None
    error = _parse_error(source)
    # Comments standing for a body: retry with each comment-only line as a statement.
    if (
        error is not None
        and "expected an indented block" in error
        and _parse_error(_COMMENT_LINE.sub(r"\1...", source)) is None
    ):
        return None
    return error


_COMMENT_LINE = re.compile(r"^([ \t]*)#.*$", re.M)


def _parse_error(source: str) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in the snippet are not our failure
            ast.parse(source)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return str(exc)[:200] or type(exc).__name__
    return None


def json_error(code: str) -> str | None:
    """Why ``code`` is not JSON, or None.

    Accepted besides whole documents: an object's members without their braces (a fragment of a
    ``package.json``), and blocks with ``...`` placeholders or ``//`` comments (illustrations).
    """
    if not code.strip():
        return None
    ok, reason = parse_json(code)
    if ok or "..." in code or "\u2026" in code or _JSON_COMMENT.search(code):
        return None
    if parse_json("{" + code + "}")[0]:
        return None
    return str(reason)


def yaml_error(code: str) -> str | None:
    """Why ``code`` is not YAML, or None; templated blocks (``{{ }}``, ``{% %}``) are not judged."""
    if not code.strip() or "{{" in code or "{%" in code:
        return None
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for _ in yaml.load_all(code, Loader=loader):
            pass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return f"{where}{getattr(exc, 'problem', None) or type(exc).__name__}"
    except (ValueError, RecursionError) as exc:
        return str(exc)[:200]
    return None


def first_broken_block(text: str) -> str | None:
    """What is wrong with the first fenced Python, JSON or YAML block of ``text`` that does not
    parse, or None when every such block parses."""
    for number, (language, code) in enumerate(fenced_blocks(text), start=1):
        if language in _PY:
            error, kind = python_error(code), "Python"
        elif language in _JSON:
            error, kind = json_error(code), "JSON"
        elif language in _YAML:
            error, kind = yaml_error(code), "YAML"
        else:
            continue
        if error is not None:
            return f"code block {number} ({kind}) does not parse: {error}"
    return None
