"""Answer checks: each failure beside a valid twin that must pass, and near-misses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.chat.checks import (
    CHECK_NAMES,
    Answer,
    CheckError,
    SchemaCache,
    first_failed_check,
    first_failure,
    validate_check_names,
)
from router.code_blocks import fenced_blocks
from router.repetition import repetition_ratio

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
            "required": ["name", "age"],
        },
    },
}
PROSE = (
    "The capital of France is Paris. It has been the seat of government for centuries, and "
    "it is known for its museums, its cafes and the river Seine that runs through its centre."
)


def msg(content: Any = None, **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content, **extra}


def call(name: str, arguments: Any, kind: str = "function") -> dict[str, Any]:
    return {"id": "c1", "type": kind, kind: {"name": name, "arguments": arguments}}


def check(message: dict[str, Any], finish: str | None = "stop", **request: Any) -> str | None:
    return first_failed_check(message, finish, **request)


# ---- json_schema ---------------------------------------------------------------------------------


def test_json_schema_valid_twin_passes() -> None:
    assert check(msg('{"name": "Ada", "age": 36}'), response_format=PERSON) is None


@pytest.mark.parametrize(
    "content",
    [
        '{"name": "Ada", "age": "36"}',  # wrong type
        '{"name": "Ada"}',  # missing required
        '{"name": "Ada", "age": -1}',  # below minimum
        '```json\n{"name": "Ada", "age": 36}\n```',  # fenced: the client's json.loads fails
        '{"name": "Ada", "age": 36',  # cut off
        "",
        '{"name": "Ada", "age": NaN}',  # not JSON
    ],
)
def test_json_schema_failures(content: str) -> None:
    assert check(msg(content), response_format=PERSON) == "json_schema"


def test_json_object_must_parse_only() -> None:
    fmt = {"type": "json_object"}
    assert check(msg('{"anything": [1, 2]}'), response_format=fmt) is None
    assert check(msg("{'single': 'quotes'}"), response_format=fmt) == "json_schema"


def test_json_schema_not_applicable() -> None:
    assert check(msg("plain text"), response_format={"type": "text"}) is None
    assert check(msg("plain text")) is None
    # a refusal, or a tool call instead of content, is not a broken JSON answer
    assert check(msg(None, refusal="I can't help with that."), response_format=PERSON) is None
    tool_answer = msg(None, tool_calls=[call("get_weather", '{"city": "Paris"}')])
    assert check(tool_answer, response_format=PERSON, tools=[WEATHER]) is None
    # an invalid schema is the client's error: no tier can fix it
    broken = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}}
    assert check(msg('{"a": 1}'), response_format=broken) is None


def test_failure_detail_names_the_field() -> None:
    failure = first_failure(Answer(msg('{"name": "Ada", "age": "36"}'), response_format=PERSON))
    assert failure is not None and failure.check == "json_schema"
    assert "age" in failure.detail


# ---- tool_arguments ------------------------------------------------------------------------------


def test_tool_arguments_valid_twins_pass() -> None:
    for arguments in ('{"city": "Paris"}', '{"city": "Paris", "unit": "c"}', {"city": "Oslo"}):
        answer = msg(None, tool_calls=[call("get_weather", arguments)])
        assert check(answer, tools=[WEATHER]) is None
    # no parameters declared: any object; empty arguments count as {}
    bare = {"type": "function", "function": {"name": "now"}}
    assert check(msg(None, tool_calls=[call("now", "")]), tools=[bare]) is None
    # the Responses API's flat tool definition
    flat = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER["function"]["parameters"],
    }
    assert check(msg(None, tool_calls=[call("get_weather", '{"city": "P"}')]), tools=[flat]) is None
    # custom tools take free text
    custom = {"type": "custom", "custom": {"name": "shell"}}
    answer = msg(None, tool_calls=[{"type": "custom", "custom": {"name": "shell", "input": "ls"}}])
    assert check(answer, tools=[custom]) is None


@pytest.mark.parametrize(
    "calls",
    [
        [call("get_wether", '{"city": "Paris"}')],  # undeclared name
        [call("get_weather", '{"city": "Paris"')],  # not JSON
        [call("get_weather", '["Paris"]')],  # not an object
        [call("get_weather", '{"unit": "c"}')],  # required missing
        [call("get_weather", '{"city": "Paris", "unit": "kelvin"}')],  # not in the enum
        [call("get_weather", '{"city": "Paris", "when": "now"}')],  # additional property
        [call("get_weather", '{"city": "Paris"}'), call("get_weather", '{"city": 3}')],  # 2nd bad
    ],
)
def test_tool_arguments_failures(calls: list[dict[str, Any]]) -> None:
    assert check(msg(None, tool_calls=calls), tools=[WEATHER]) == "tool_arguments"


def test_tool_calls_without_declared_tools_fail() -> None:
    answer = msg(None, tool_calls=[call("get_weather", '{"city": "Paris"}')])
    assert check(answer) == "tool_arguments"


def test_tool_choice() -> None:
    forced = {"type": "function", "function": {"name": "get_weather"}}
    assert check(msg(PROSE), tools=[WEATHER], tool_choice="required") == "tool_arguments"
    assert check(msg(PROSE), tools=[WEATHER], tool_choice=forced) == "tool_arguments"
    assert check(msg(PROSE), tools=[WEATHER], tool_choice="auto") is None
    other = {"type": "function", "function": {"name": "now"}}
    answer = msg(None, tool_calls=[call("now", "{}")])
    assert check(answer, tools=[WEATHER, other], tool_choice=forced) == "tool_arguments"


def test_schema_cache_compiles_once_and_agrees() -> None:
    cache = SchemaCache(size=1)
    good = Answer(msg(None, tool_calls=[call("get_weather", '{"city": "P"}')]), tools=[WEATHER])
    bad = Answer(msg(None, tool_calls=[call("get_weather", '{"city": 1}')]), tools=[WEATHER])
    assert first_failure(good, cache=cache) is None
    assert first_failure(bad, cache=cache) == first_failure(bad)
    assert len(cache._validators) == 1
    first_failure(Answer(msg('{"name": "A", "age": 1}'), response_format=PERSON), cache=cache)
    assert len(cache._validators) == 1  # the LRU keeps one


def test_remote_refs_are_never_fetched() -> None:
    remote = {"$ref": "https://example.invalid/schema.json"}
    tool = {"type": "function", "function": {"name": "f", "parameters": remote}}
    assert check(msg(None, tool_calls=[call("f", '{"a": 1}')]), tools=[tool]) is None


# ---- code_syntax ---------------------------------------------------------------------------------

GOOD_PY = "Here is the function:\n\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
BAD_PY = "Here is the function:\n\n```python\ndef add(a, b)\n    return a + b\n```\nDone."


def test_python_block_valid_twin_passes_and_near_miss_fails() -> None:
    assert check(msg(GOOD_PY)) is None
    assert check(msg(BAD_PY)) == "code_syntax"


@pytest.mark.parametrize(
    "content",
    [
        # prose that merely mentions code, or code without a checkable fence
        "Use `def add(a, b) return a+b` carefully; the colon after def matters in python.",
        "```\ndef add(a, b)\n    return a\n```",  # unmarked block
        "```javascript\nconst x = ;\n```",  # a language not checked
        # console sessions, notebook magics, comment-only bodies, indented fences
        "```python\n>>> x = 1\n>>> print(x)\n1\n```",
        "```python\n%matplotlib inline\n!pip install numpy\nimport numpy as np\n```",
        "```python\ndef solve(prices):\n    # Implement your solution here\n```",
        "1. First:\n   ```python\n   for i in range(3):\n       print(i)\n   ```\n2. Then run it.",
        "```py\nresult = await client.get('/x')\n```",  # top-level await in a snippet
        '```python\npattern = "\\d+"\n```',  # an invalid escape is a warning, not an error
        "~~~python\nx = [1, 2]\n~~~",
        # JSON fragments and illustrations, templated YAML
        '```json\n"scripts": {\n  "build": "tsc"\n}\n```',
        '```json\n{"items": [1, 2, ...]}\n```',
        "```yaml\nimage: {{ .Values.image }}\n```",
        "```yaml\na: 1\n---\nb: [1, 2]\n```",
    ],
)
def test_code_syntax_passes(content: str) -> None:
    assert check(msg(content)) is None


@pytest.mark.parametrize(
    "content",
    [
        "```python\nprint 'hello'\n```",
        "```python\nx = (1,\n```",  # an unclosed block runs to the end
        'Text\n```python\nimport os\n```\nmore\n```json\n{"a": 1,}\n```',  # second block breaks
        "```yaml\nkey: [unclosed\n```",
        "```yml\na: b: c\n```",
        '```json\n{"a": () => 1}\n```',
    ],
)
def test_code_syntax_failures(content: str) -> None:
    assert check(msg(content)) == "code_syntax"


def test_fenced_blocks_reads_language_and_body() -> None:
    text = "a\n```Python title\nx = 1\n```\n````yaml\nk: v\n````\n```{.json}\n{}\n```"
    assert list(fenced_blocks(text)) == [("python", "x = 1"), ("yaml", "k: v"), ("json", "{}")]


# ---- degenerate ----------------------------------------------------------------------------------


def test_degenerate() -> None:
    assert check(msg(PROSE)) is None
    assert check(msg("")) == "degenerate"
    assert check(msg(None)) == "degenerate"
    assert check(msg("  \n\t ")) == "degenerate"
    loop = "I think the answer is 42. " + "The box was opened and the cat was alive. " * 20
    assert check(msg(loop)) == "degenerate"
    assert check(msg("- 1 cup rolled oats\n" * 30)) == "degenerate"
    # a short repetition, a table of distinct rows, a refusal or a tool call are not degenerate
    assert check(msg("Yes. Yes. Yes.")) is None
    table = "\n".join(f"| {s} | {n} | {n * 3} |" for n, s in enumerate("ABCDEFGHIJKLMNOP"))
    assert check(msg(table)) is None
    assert check(msg(None, refusal="I can't help with that.")) is None
    records = json.dumps([{"id": i, "name": "item", "tags": ["a", "b"]} for i in range(40)])
    assert check(msg(records)) is None  # structured output repeats by design
    assert check(msg(records), response_format={"type": "json_object"}) is None
    assert (
        check(msg("", tool_calls=[call("get_weather", '{"city": "P"}')]), tools=[WEATHER]) is None
    )


def test_repetition_ratio() -> None:
    assert repetition_ratio("a b c") == (0.0, 0)
    ratio, total = repetition_ratio("x y z w v " * 20)
    assert total == 96 and ratio > 0.9


# ---- truncated -----------------------------------------------------------------------------------


def test_truncated_only_when_nobody_set_the_limit() -> None:
    assert check(msg(PROSE), "length") == "truncated"
    assert check(msg(PROSE), "length", limit_set_by="client") is None
    assert check(msg(PROSE), "length", limit_set_by="budget") is None
    assert check(msg(PROSE), "stop") is None
    assert check(msg(PROSE), None) is None


# ---- running them --------------------------------------------------------------------------------


def test_order_and_selection() -> None:
    both = msg('{"name": "Ada"}')  # breaks the schema and is cut off
    assert check(both, "length", response_format=PERSON) == "json_schema"
    assert (
        first_failed_check(
            both, "length", response_format=PERSON, checks=["truncated", "json_schema"]
        )
        == "truncated"
    )
    assert check(both, "length", response_format=PERSON, checks=["degenerate"]) is None


def test_unknown_check_is_refused_with_the_accepted_names() -> None:
    with pytest.raises(CheckError, match=r"unknown check 'json'.*json_schema, tool_arguments"):
        validate_check_names(["json"])
    with pytest.raises(CheckError):
        first_failure(Answer(msg(PROSE)), ["nope"])
    assert validate_check_names(list(CHECK_NAMES)) == CHECK_NAMES


def test_list_content_parts_are_read() -> None:
    parts = [{"type": "text", "text": '{"name": "Ada",'}, {"type": "text", "text": '"age": 1}'}]
    assert check(msg(parts), response_format=PERSON) is None
    assert json.loads('{"name": "Ada",\n"age": 1}')  # what the parts join to
