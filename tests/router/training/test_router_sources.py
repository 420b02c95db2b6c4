"""Loaders: the shared-data layouts and the generic JSONL format, on tiny files made here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.errors import DataError
from router.training.data import load_jsonl, load_prompts
from router.training.sources import load_path
from tests.support.routerdata import STRONG, WEAK, write_csv, write_jsonl


def test_shared_layout_loads_every_source(shared_layout: Path) -> None:
    examples = load_path(shared_layout)
    by_source: dict[str, list[object]] = {}
    for e in examples:
        by_source.setdefault(e.source, []).append(e)
    assert sorted(by_source) == [
        "llmrouter/mbpp",
        "llmrouter/trivia_qa",
        "routellm/gsm8k",
        "routellm/mmlu",
        "routellm/mt-bench",
    ]
    assert len(by_source["routellm/mmlu"]) == 3  # the contaminated prompt is dropped
    assert len(by_source["routellm/mt-bench"]) == 4  # 2 questions x 2 turns
    assert not any(
        "Shared question" in e.conversation[-1][1] for e in examples
    )  # two tasks: dropped


def test_routellm_weak_is_the_model_with_lower_accuracy(shared_layout: Path) -> None:
    mmlu = [e for e in load_path(shared_layout / "routellm" / "mmlu")]
    physics = next(e for e in mmlu if e.conversation[0][1].startswith("Hard physics"))
    assert (physics.weak, physics.strong) == (0.0, 1.0)
    france = next(e for e in mmlu if e.conversation[0][1] == "Capital of France?")
    assert (france.weak, france.strong) == (1.0, 0.0)
    assert {e.family for e in mmlu} == {"mmlu"}


def test_mt_bench_turn_two_is_a_conversation_with_the_weak_answer(shared_layout: Path) -> None:
    examples = load_path(shared_layout / "routellm" / "mt_bench")
    coding_t2 = [
        e for e in examples if len(e.conversation) == 3 and "parser" in e.conversation[0][1]
    ]
    assert len(coding_t2) == 1
    e = coding_t2[0]
    assert [r for r, _ in e.conversation] == ["user", "assistant", "user"]
    assert e.conversation[1][1] == f"answer by {WEAK}"
    assert e.weak == pytest.approx(5 / 9) and e.strong == 1.0


def test_llmrouter_pair_and_task_sources(shared_layout: Path) -> None:
    examples = load_path(shared_layout / "llmrouter")
    code = next(e for e in examples if e.source == "llmrouter/mbpp")
    assert (code.weak, code.strong, code.family) == (0.0, 1.0, "mbpp")
    assert (code.small, code.large) == (0.0, 1.0)  # panel means over the models scored


def test_generic_jsonl_prompt_and_messages(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"prompt": "hello", "weak": 1, "strong": 1},
            "",
            {
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "sum 2+2"}]},
                ],
                "weak": 0.25,
                "strong": True,
                "source": "chat",
            },
        ],
    )
    a, b = load_jsonl(path)
    assert a.source == "mine" and a.conversation == (("user", "hello"),)
    assert b.source == "chat" and b.weak == 0.25 and b.strong == 1.0
    assert b.conversation == (("system", "be brief"), ("user", "sum 2+2"))
    assert load_path(path)[1].source == "chat"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "expected an object"),
        ('{"weak": 1, "strong": 0}', "missing 'prompt' or 'messages'"),
        ('{"prompt": "x", "strong": 0}', "missing 'weak'"),
        ('{"prompt": "x", "weak": 1.5, "strong": 0}', "'weak' is 1.5; expected a number in [0, 1]"),
        ('{"prompt": "x", "weak": "yes", "strong": 0}', "expected a number in [0, 1]"),
        ('{"prompt": 3, "weak": 1, "strong": 0}', "expected a string"),
        ('{"messages": [], "weak": 1, "strong": 0}', "non-empty list"),
        (
            '{"messages": [{"role": "robot", "content": "x"}], "weak": 1, "strong": 0}',
            "role 'robot'",
        ),
        ('{"prompt": "x", "weak": 1, "strong": 0, "source": 5}', "'source' is 5"),
    ],
)
def test_generic_jsonl_errors_name_file_and_line(tmp_path: Path, line: str, expected: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "ok", "weak": 1, "strong": 1}, line])
    with pytest.raises(DataError) as info:
        load_jsonl(path)
    assert str(info.value).startswith(f"{path}:2: ")
    assert expected in str(info.value)
    assert info.value.line == 2


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no rows"):
        load_jsonl(empty)
    with pytest.raises(DataError, match="no such file or directory"):
        load_path(tmp_path / "absent")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="no routing data found"):
        load_path(tmp_path / "nothing")


def test_load_prompts_needs_no_outcomes(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "p.jsonl", [{"prompt": "a"}, {"messages": [{"role": "user", "content": None}]}]
    )
    assert load_prompts(path) == [(("user", "a"),), (("user", ""),)]


def test_csv_errors(tmp_path: Path) -> None:
    bad_value = write_csv(
        tmp_path / "m" / "responses" / "mmlu_x.csv",
        ["prompt", WEAK, STRONG],
        [["q1", True, True], ["q2", "maybe", True]],
    )
    with pytest.raises(DataError) as info:
        load_path(tmp_path / "m")
    assert f"{bad_value}:3:" in str(info.value) and "expected True or False" in str(info.value)
    bad_header = write_csv(
        tmp_path / "g" / "gsm8k_responses.csv", ["question", WEAK], [["q", True]]
    )
    with pytest.raises(DataError, match=f"{bad_header}:1: .*exactly two model outcome columns"):
        load_path(tmp_path / "g")


def test_mt_bench_errors(shared_layout: Path) -> None:
    path = shared_layout / "routellm" / "mt_bench" / "judgements.jsonl"
    rows = path.read_text().splitlines()
    row = json.loads(rows[0])
    row["score"] = 11
    path.write_text("\n".join([rows[1], json.dumps(row)]) + "\n")
    with pytest.raises(
        DataError, match=r"judgements.jsonl:2: 'score' is 11; expected a judge score"
    ):
        load_path(shared_layout / "routellm" / "mt_bench")


def test_llmrouter_errors(shared_layout: Path) -> None:
    llm = shared_layout / "llmrouter"
    write_jsonl(llm / "query_train.jsonl", [{"task_name": "mbpp", "query": "something else"}])
    with pytest.raises(DataError, match=r"item 0: question not found in query_train\.jsonl"):
        load_path(llm)
    (llm / "dcrouter_train.json").write_text(json.dumps([{"question": "q", "scores": {"a": 1}}]))
    with pytest.raises(DataError, match="item 0: expected 'scores' with"):
        load_path(llm)
    write_jsonl(llm / "query_train.jsonl", ["{broken"])
    with pytest.raises(DataError, match=r"query_train\.jsonl:1: not valid JSON"):
        load_path(llm)
