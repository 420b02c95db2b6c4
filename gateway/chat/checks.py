"""Answer checks: cheap, certain signs that a model's answer failed, seen before the client sees it.

Each check reads the request's contract (``response_format``, ``tools``, ``tool_choice``, who set
the token limit) and the answer (an OpenAI chat-completion ``message`` and its ``finish_reason``)
and says whether the answer broke it. They are pure functions of their arguments: no I/O, no
model, no state, so the gateway can run them on every answer of the cheaper tier before deciding
to escalate. ``first_failure`` runs the checks a policy names, in order, and returns the first
failure (``Failure.check`` is the ``x-tiergate-escalated`` value); ``first_failed_check`` returns
only its name.

What each check refuses (and, as important, what it lets through):

- ``json_schema``: with ``response_format`` ``json_schema``, content that does not parse as JSON
  or does not validate against the schema; with ``json_object``, content that does not parse. A
  message answering with tool calls and no content, a ``refusal``, or an invalid schema (the
  client's error, which no other tier can fix) passes.
- ``tool_arguments``: a tool call naming a tool the request did not declare, arguments that are not
  a JSON object or do not validate against the tool's ``parameters``; no tool call when
  ``tool_choice`` required one, or a call of another function than the one it named.
- ``code_syntax``: fenced code blocks marked ``python``/``py`` (``ast.parse``; console prompts
  ``>>>`` and IPython ``%``/``!`` lines are allowed), ``json`` (``...`` placeholders tolerated) and
  ``yaml`` (blocks with ``{{ }}`` or ``{% %}`` templates skipped). Unmarked blocks, other
  languages, inline code and prose that merely mentions code are not checked.
- ``degenerate``: an empty or whitespace-only answer (without tool calls or a refusal), or a
  looping one: at least ``LOOP_MIN_NGRAMS`` word 5-grams of which more than ``LOOP_RATIO`` repeat
  an earlier one. JSON content is not judged a loop (records alike repeat by design). On the
  shared data's 14,587 answers (GSM8K, AlpacaEval) it fires on 50, one of them judged good.
- ``truncated``: ``finish_reason == "length"`` when neither the client nor a budget cap the
  gateway injected set the limit (``limit_set_by``): the model ran into the server's limit.

JSON Schemas are validated with ``jsonschema`` (the draft the schema names, 2020-12 otherwise), with
no remote ``$ref`` retrieval. Validators are compiled once per schema when the caller passes a
``SchemaCache`` (the gateway holds one); without it each call compiles its own.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from router.code_blocks import first_broken_block, parse_json
from router.repetition import LOOP_N, repetition_ratio

LimitSetBy = Literal["client", "budget"] | None
CHECK_NAMES = ("json_schema", "tool_arguments", "code_syntax", "degenerate", "truncated")
LOOP_MIN_NGRAMS = 50
LOOP_RATIO = 0.6


class CheckError(ValueError):
    """A check name the caller asked for that does not exist (a configuration error)."""


@dataclass(frozen=True)
class Failure:
    """The first check an answer failed: ``check`` is its name, ``detail`` says what broke."""

    check: str
    detail: str


@dataclass(frozen=True)
class Answer:
    """What the checks read: the request's contract and the model's answer to it.

    ``message`` is the chat completion's ``choices[0].message`` as a mapping (``content``,
    ``tool_calls``, ``refusal``); ``limit_set_by`` says who set ``max_tokens`` (None: nobody, the
    server's own limit applied).
    """

    message: Mapping[str, Any]
    finish_reason: str | None = None
    response_format: Mapping[str, Any] | None = None
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: Any = None
    limit_set_by: LimitSetBy = None

    @property
    def content(self) -> str:
        """The message's text (text parts of a list content joined; None is empty)."""
        content = self.message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            parts = [p.get("text") for p in content if isinstance(p, Mapping)]
            return "\n".join(p for p in parts if isinstance(p, str))
        return ""

    @property
    def tool_calls(self) -> list[Mapping[str, Any]]:
        calls = self.message.get("tool_calls")
        return [c for c in calls if isinstance(c, Mapping)] if isinstance(calls, list) else []

    @property
    def refusal(self) -> bool:
        refusal = self.message.get("refusal")
        return isinstance(refusal, str) and bool(refusal.strip())


class SchemaCache:
    """Compiled JSON Schema validators keyed by the schema's canonical JSON (LRU, thread-safe).

    One per process: the gateway builds it at start-up and passes it to every ``first_failure``.
    Compiling is most of the cost of a validation (about 60 of 100 microseconds for a small tool).
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._validators: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def errors(self, schema: Any, instance: Any) -> str | None:
        """The first validation error's message, or None when ``instance`` fits ``schema``.

        An invalid schema (or one the validator cannot evaluate) returns None: nothing to judge.
        """
        try:
            key = json.dumps(schema, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            return None
        with self._lock:
            validator = self._validators.get(key)
            if validator is not None:
                self._validators.move_to_end(key)
        if validator is None:
            validator = compile_schema(schema)
            if validator is None:
                return None
            with self._lock:
                self._validators[key] = validator
                while len(self._validators) > self.size:
                    self._validators.popitem(last=False)
        return validation_error(validator, instance)


def compile_schema(schema: Any) -> Any:
    """A jsonschema validator for ``schema``, or None if it is not a usable schema."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    if not isinstance(schema, Mapping | bool):
        return None
    try:
        cls = validator_for(schema)
        cls.check_schema(schema)
        return cls(schema)
    except (SchemaError, TypeError, ValueError):
        return None


def validation_error(validator: Any, instance: Any) -> str | None:
    """The first error of ``instance`` under a compiled validator; None if valid or unjudgeable."""
    try:
        error = next(iter(validator.iter_errors(instance)), None)
    except Exception:  # an unresolvable $ref, a bad regex: the schema's fault, not the answer's
        return None
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message[:200]}"


# ---- the checks ---------------------------------------------------------------------------------

CheckFn = Callable[[Answer, SchemaCache | None], str | None]


def _schema_errors(cache: SchemaCache | None, schema: Any, instance: Any) -> str | None:
    if cache is not None:
        return cache.errors(schema, instance)
    validator = compile_schema(schema)
    return None if validator is None else validation_error(validator, instance)


def check_json_schema(answer: Answer, cache: SchemaCache | None = None) -> str | None:
    """The content fits ``response_format`` (json_object: parses; json_schema: validates)."""
    fmt = answer.response_format
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind not in ("json_object", "json_schema"):
        return None
    if answer.refusal or (answer.tool_calls and not answer.content.strip()):
        return None
    ok, value = parse_json(answer.content)
    if not ok:
        return f"content is not JSON ({value}); response_format {kind} asks for JSON"
    if kind == "json_object":
        return None
    spec = fmt.get("json_schema") if isinstance(fmt, Mapping) else None
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if schema is None:
        return None
    error = _schema_errors(cache, schema, value)
    return None if error is None else f"content does not fit the response_format schema {error}"


def _declared_tools(
    tools: Sequence[Mapping[str, Any]] | None,
) -> dict[str, tuple[str, Any]]:
    """Declared tool name -> (type, ``parameters`` schema or None); nested or flat definitions."""
    declared: dict[str, tuple[str, Any]] = {}
    for tool in tools or ():
        if not isinstance(tool, Mapping):
            continue
        kind = str(tool.get("type", "function"))
        nested = tool.get(kind)
        body: Mapping[str, Any] = nested if isinstance(nested, Mapping) else tool
        name = body.get("name")
        if isinstance(name, str):
            declared[name] = (kind, body.get("parameters") if kind == "function" else None)
    return declared


def check_tool_arguments(answer: Answer, cache: SchemaCache | None = None) -> str | None:
    """Every tool call names a declared tool with arguments that fit its ``parameters``."""
    calls = answer.tool_calls
    forced = _forced_name(answer.tool_choice)
    if not calls:
        if answer.tool_choice == "required":
            return "tool_choice is 'required' but the answer calls no tool"
        return None if forced is None else f"tool_choice names {forced!r} but no tool was called"
    declared = _declared_tools(answer.tools)
    for index, call in enumerate(calls):
        kind = str(call.get("type", "function"))
        body = call.get(kind) if isinstance(call.get(kind), Mapping) else call.get("function")
        name = body.get("name") if isinstance(body, Mapping) else None
        if not isinstance(body, Mapping) or not isinstance(name, str) or name not in declared:
            accepted = ", ".join(sorted(declared)) or "none declared"
            return f"tool call {index} names {name!r}; declared tools: {accepted}"
        if forced is not None and name != forced:
            return f"tool call {index} names {name!r}; tool_choice requires {forced!r}"
        declared_kind, schema = declared[name]
        if kind == "custom" or declared_kind != "function":
            continue  # free-text input: nothing to parse
        raw = body.get("arguments")
        if isinstance(raw, Mapping):
            arguments: Any = raw
        elif isinstance(raw, str) or raw is None:
            ok, arguments = parse_json(raw) if raw and raw.strip() else (True, {})
            if not ok:
                return f"tool call {index} ({name}): arguments are not JSON ({arguments})"
        else:
            return f"tool call {index} ({name}): arguments are a {type(raw).__name__}"
        if not isinstance(arguments, Mapping):
            return f"tool call {index} ({name}): arguments are not a JSON object"
        if schema is not None:
            error = _schema_errors(cache, schema, arguments)
            if error is not None:
                return f"tool call {index} ({name}): arguments do not fit parameters {error}"
    return None


def _forced_name(choice: Any) -> str | None:
    """The function a ``tool_choice`` object forces, if any."""
    if not isinstance(choice, Mapping):
        return None
    body = choice.get("function") if isinstance(choice.get("function"), Mapping) else choice
    name = body.get("name") if isinstance(body, Mapping) else None
    return name if isinstance(name, str) else None


def check_code_syntax(answer: Answer, cache: SchemaCache | None = None) -> str | None:
    """Every fenced Python, JSON and YAML block parses (router.code_blocks)."""
    del cache
    return first_broken_block(answer.content)


def check_degenerate(answer: Answer, cache: SchemaCache | None = None) -> str | None:
    """Not empty, not whitespace, not a loop."""
    del cache
    text = answer.content
    if not text.strip():
        if answer.tool_calls or answer.refusal:
            return None
        return "the answer is empty" if not text else "the answer is only whitespace"
    ratio, total = repetition_ratio(text)
    if total >= LOOP_MIN_NGRAMS and ratio > LOOP_RATIO and not _is_json(answer):
        return f"the answer loops: {ratio:.0%} of its {total} word {LOOP_N}-grams repeat"
    return None


def _is_json(answer: Answer) -> bool:
    """Structured output (many records alike) repeats by design: JSON is not judged a loop."""
    fmt = answer.response_format
    if isinstance(fmt, Mapping) and fmt.get("type") in ("json_object", "json_schema"):
        return True
    text = answer.content.lstrip()
    return text[:1] in ("{", "[") and parse_json(text)[0]


def check_truncated(answer: Answer, cache: SchemaCache | None = None) -> str | None:
    """Not cut off by a limit nobody asked for (a client's or a budget's limit is not a failure)."""
    del cache
    if answer.finish_reason != "length" or answer.limit_set_by in ("client", "budget"):
        return None
    return "finish_reason is 'length' and neither the client nor a budget cap set the limit"


CHECKS: Mapping[str, CheckFn] = MappingProxyType(
    {
        "json_schema": check_json_schema,
        "tool_arguments": check_tool_arguments,
        "code_syntax": check_code_syntax,
        "degenerate": check_degenerate,
        "truncated": check_truncated,
    }
)


def validate_check_names(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple; CheckError naming the unknown one and the accepted names."""
    for name in names:
        if name not in CHECKS:
            raise CheckError(f"unknown check {name!r}; accepted: {', '.join(CHECK_NAMES)}")
    return tuple(names)


def first_failure(
    answer: Answer, checks: Sequence[str] = CHECK_NAMES, cache: SchemaCache | None = None
) -> Failure | None:
    """The first of ``checks`` (in the given order) that ``answer`` fails, or None."""
    for name in validate_check_names(checks):
        detail = CHECKS[name](answer, cache)
        if detail is not None:
            return Failure(name, detail)
    return None


def first_failed_check(
    message: Mapping[str, Any],
    finish_reason: str | None,
    *,
    response_format: Mapping[str, Any] | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    limit_set_by: LimitSetBy = None,
    checks: Sequence[str] = CHECK_NAMES,
    cache: SchemaCache | None = None,
) -> str | None:
    """The name of the first failed check (the ``x-tiergate-escalated`` value), or None."""
    answer = Answer(message, finish_reason, response_format, tools, tool_choice, limit_set_by)
    failure = first_failure(answer, checks, cache)
    return None if failure is None else failure.check
