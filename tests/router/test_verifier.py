"""The verifier: answer arithmetic, answer features, answer-outcome data, fitting, the artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from router.answer_math import equations, evaluate, final_number, to_number
from router.errors import DataError, RouterError
from router.training.verifier_data import AnswerExample, load_answer_jsonl, load_answer_path
from router.training.verifier_eval import leave_one_source_out, model_and_source_out, request_folds
from router.training.verifier_fit import VerifierConfig, expand, train_verifier
from router.verifier import VERIFIER_FILE, Verifier, load_verifier_artifact
from router.verifier_features import (
    MATH_COLUMNS,
    SHAPE_COLUMNS,
    column_names,
    featurize_answers,
    get_answer_feature,
    register_answer_feature,
)
from tests.support.routerdata import STRONG, WEAK, write_csv, write_jsonl

GOOD = "She has 16 - 3 = 13 eggs, then 13 - 4 = 9, sold at $2: 9 * 2 = <<9*2=18>>18.\n#### 18"
BAD = "She has 16 - 3 = 12 eggs, then 12 - 4 = 8, sold at $2: 8 * 2 = <<8*2=17>>17.5"
QUESTION = "Janet's ducks lay 16 eggs; she eats 3 and bakes with 4. Eggs sell at $2. Income?"


# ---- arithmetic ----------------------------------------------------------------------------------


def test_equations_are_checked() -> None:
    found = equations(GOOD)
    assert [(e.expression, e.stated, e.holds, e.annotation) for e in found] == [
        ("9*2", 18.0, True, True),
        ("16 - 3", 13.0, True, False),
        ("13 - 4", 9.0, True, False),
        ("9 * 2", 18.0, True, False),
    ]
    wrong = [e for e in equations(BAD) if not e.holds]
    assert {e.expression for e in wrong} == {"16 - 3", "8*2", "8 * 2"}
    # rounding to two decimals is not an error; "= 5/2" is not read as "= 5"
    assert all(e.holds for e in equations("10 / 3 = 3.33 and 2 + 1/2 = 5/2 here"))


def test_evaluate_is_arithmetic_only() -> None:
    assert evaluate("(2 + 3) x 4") == 20.0
    assert evaluate("$1,200 / 4") == 300.0
    assert evaluate("1/0") is None
    assert evaluate("__import__('os')") is None
    assert evaluate("2 ** 10") is None  # only + - * /


def test_final_number() -> None:
    assert final_number(GOOD) == (18.0, True)
    assert final_number("The answer is **42**.") == (42.0, True)
    assert final_number("so \\boxed{3.5}") == (3.5, True)
    assert final_number("about 7 or 8 apples") == (8.0, False)
    assert final_number("no numbers") == (None, False)
    assert to_number("$1,234.50") == 1234.5 and to_number("40%") == 40.0 and to_number("x") is None


# ---- features ------------------------------------------------------------------------------------


def test_featurize_answers_one_encoder_call(fake_encoder: Any) -> None:
    names = ["answer", "request_answer_cosine", "answer_math", "answer_shape", "answer_tone"]
    convs = [(("user", QUESTION),), (("user", QUESTION),)]
    x = featurize_answers(convs, [GOOD, BAD], names, fake_encoder.encode)
    width = 16 + 1 + len(MATH_COLUMNS) + len(SHAPE_COLUMNS) + 4
    assert x.shape == (2, width) and len(fake_encoder.calls) == 1
    assert len(fake_encoder.calls[0]) == 2 + 4  # two answers, then both sides of the cosine
    cols = column_names(names, 16)
    math_of = {c: x[:, cols.index(f"answer_math.{c}")] for c in MATH_COLUMNS}
    assert math_of["wrong_equations"][0] == 0 and math_of["wrong_equations"][1] > 0
    assert list(math_of["final_marker"]) == [1.0, 0.0]
    assert list(math_of["final_not_integer"]) == [0.0, 1.0]


def test_math_features_stay_silent_without_numbers_in_the_request(fake_encoder: Any) -> None:
    x = featurize_answers(
        [(("user", "Write a haiku"),)], [BAD], ["answer_math"], fake_encoder.encode
    )
    assert not x.any() and fake_encoder.calls == []


def test_shape_and_tone_features(fake_encoder: Any) -> None:
    convs = [(("user", "Explain recursion"),)] * 4
    answers = [
        "Recursion is when a function calls itself. It needs a base case.",
        "Recursion is when a function calls itself and it needs",  # cut off
        "```python\ndef f(n)\n    return f(n - 1)\n```",  # broken code
        "I'm sorry, but I cannot help. Maybe, I think, perhaps?",
    ]
    x = featurize_answers(convs, answers, ["answer_shape", "answer_tone"], fake_encoder.encode)
    cols = column_names(["answer_shape", "answer_tone"], 16)
    col = {name: x[:, i] for i, name in enumerate(cols)}
    assert list(col["answer_shape.unfinished"]) == [0.0, 1.0, 0.0, 0.0]
    assert list(col["answer_shape.code_broken"]) == [0.0, 0.0, 1.0, 0.0]
    assert list(col["answer_tone.refusal"]) == [0.0, 0.0, 0.0, 1.0]
    assert col["answer_tone.hedges"][3] > 0 and col["answer_tone.hedges"][0] == 0


def test_registry_refuses_taken_and_unknown_names() -> None:
    with pytest.raises(RouterError, match="already registered"):
        register_answer_feature("answer", kind="embedding")(lambda c, a: a)
    with pytest.raises(RouterError, match=r"unknown answer feature 'nope'.*answer_math"):
        get_answer_feature("nope")
    with pytest.raises(RouterError, match="kind must be"):
        register_answer_feature("plugin_without_columns", kind="values")(lambda c, a: [1.0])


# ---- data ----------------------------------------------------------------------------------------


def test_generic_jsonl(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"prompt": "q1", "answer": "a1", "outcome": 1, "model": "small"},
            {"messages": [{"role": "user", "content": "q2"}], "answer": "a2", "outcome": 0.25},
            {"prompt": "q1", "answer": "a3", "outcome": False, "strong": 1, "source": "x"},
        ],
    )
    rows = load_answer_jsonl(path)
    assert [(r.outcome, r.model, r.source, r.strong) for r in rows] == [
        (1.0, "small", "mine", None),
        (0.25, "unknown", "mine", None),
        (0.0, "unknown", "x", 1.0),
    ]
    assert rows[0].group == rows[2].group != rows[1].group


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "q", "outcome": 1}, "'answer' is NoneType; expected the answer's text"),
        ({"prompt": "q", "answer": "a"}, "missing 'outcome'"),
        ({"prompt": "q", "answer": "a", "outcome": 3}, "'outcome' is 3; expected a number"),
        ({"answer": "a", "outcome": 1}, "missing 'prompt' or 'messages'"),
        ({"prompt": "q", "answer": "a", "outcome": 1, "model": ""}, "'model' is ''"),
    ],
)
def test_generic_jsonl_errors_name_the_line(
    tmp_path: Path, row: dict[str, Any], message: str
) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "ok", "answer": "a", "outcome": 1}, row])
    with pytest.raises(DataError, match=f"{path}:2: .*{message[:20]}"):
        load_answer_jsonl(path)


def alpaca_layout(root: Path) -> Path:
    rows = []
    for i in range(6):
        dataset = ("oasst", "selfinstruct")[i % 2]
        for model, outcome in (
            ("gpt4_1106_preview", 0.5),
            ("small", 0.1 * i),
            ("tiny", 0.9 - i / 10),
        ):
            rows.append(
                {
                    "instruction": f"instruction {i}",
                    "dataset": dataset,
                    "model": model,
                    "output": f"answer by {model} to {i}",
                    "outcome": outcome,
                }
            )
    write_jsonl(root / "alpacaeval" / "outcomes.jsonl", rows)
    return root


def test_shared_layout_answers(shared_layout: Path) -> None:
    alpaca_layout(shared_layout)
    rows = load_answer_path(shared_layout)
    gsm = [r for r in rows if r.source == "routellm/gsm8k"]
    assert [(r.model, r.answer, r.outcome, r.strong) for r in gsm] == [
        (WEAK, "5", 0.0, 1.0),
        (STRONG, "4", 1.0, None),
        (WEAK, "2", 1.0, 1.0),
        (STRONG, "2", 1.0, None),
    ]
    alpaca = [r for r in rows if r.source.startswith("alpacaeval/")]
    assert len(alpaca) == 12 and {r.model for r in alpaca} == {"small", "tiny"}
    assert {r.strong for r in alpaca} == {0.5}
    assert {r.source for r in alpaca} == {"alpacaeval/oasst", "alpacaeval/selfinstruct"}
    assert load_answer_path(shared_layout / "alpacaeval") == alpaca


def test_gsm8k_without_responses_is_refused(tmp_path: Path) -> None:
    write_csv(tmp_path / "gsm8k_responses.csv", ["prompt", WEAK, STRONG], [["q", True, True]])
    with pytest.raises(DataError, match="'<model>_response' column"):
        load_answer_path(tmp_path)
    with pytest.raises(DataError, match="no answer data found"):
        load_answer_path(tmp_path / "..")


# ---- fitting -------------------------------------------------------------------------------------


def example(answer: str, outcome: float, model: str, i: int, source: str = "s") -> AnswerExample:
    return AnswerExample((("user", f"q{i}"),), answer, outcome, source, model, f"g{i}", 1.0)


def test_balance_within_each_model() -> None:
    rows = [example("a", float(i % 4 == 0), "good-ish", i) for i in range(8)]
    rows += [example("b", float(i == 0), "bad", i) for i in range(8)]
    rows += [example("c", 0.0, "hopeless", i) for i in range(8)]  # nothing to learn from
    x = np.arange(len(rows), dtype=np.float64)[:, None]
    xs, ys, ws = expand(x, rows, VerifierConfig())
    for lo in (0, 8):
        part = (xs[:, 0] >= lo) & (xs[:, 0] < lo + 8)
        assert ws[part & (ys == 1)].sum() == pytest.approx(ws[part & (ys == 0)].sum())
    assert not ((xs[:, 0] >= 16) & (ws > 0)).any()  # the model without a good answer: no weight
    _, _, plain = expand(x, rows, VerifierConfig(balance=False))
    assert len(plain) == 24  # every row once, as the part its outcome says


def test_train_verifier_learns_and_round_trips(tmp_path: Path, fake_encoder: Any) -> None:
    rows = []
    for i in range(60):
        bad = i % 3 == 0
        text = "wrong muddled unsure reply" if bad else "clear correct complete reply"
        rows.append(example(f"{text} {i}", 0.0 if bad else 1.0, ("m1", "m2")[i % 2], i))
    config = VerifierConfig(features=("answer", "answer_shape"), cs=(0.1, 1.0))
    artifact = train_verifier(rows, fake_encoder, config, name="t")
    assert artifact.label == "answer_unacceptable" and artifact.training["C"] in (0.1, 1.0)
    assert set(artifact.training["cv_apgr_by_C"]) == {"0.1", "1"}
    artifact.save(tmp_path, VERIFIER_FILE)
    loaded = load_verifier_artifact(tmp_path)
    verifier = Verifier(loaded, fake_encoder)
    answers = ["wrong muddled unsure reply 99", "clear correct complete reply 98"]
    p = verifier.score(["q", [{"role": "user", "content": "q"}]], answers)
    assert p[0] > 0.5 > p[1]
    assert 0.0 < verifier.threshold_for_fraction(0.3) < 1.0
    fake_encoder.runtime = "fake"
    assert verifier.info["label"] == "answer_unacceptable"
    doc = json.loads((tmp_path / VERIFIER_FILE).read_text())
    doc["model"]["intercept"] = 5.0
    (tmp_path / VERIFIER_FILE).write_text(json.dumps(doc))
    with pytest.raises(RouterError, match="checksum mismatch"):
        load_verifier_artifact(tmp_path)


def test_verifier_refuses_bad_input(fake_encoder: Any) -> None:
    rows = [example("x y", float(i % 2), "m", i) for i in range(12)]
    artifact = train_verifier(rows, fake_encoder, VerifierConfig(features=("answer",), C=1.0))
    verifier = Verifier(artifact, fake_encoder)
    with pytest.raises(RouterError, match="2 requests but 1 answers"):
        verifier.score(["a", "b"], ["x"])
    with pytest.raises(RouterError, match="item 0"):
        verifier.score([42], ["x"])  # type: ignore[list-item]
    with pytest.raises(RouterError, match="answer 0 is a int"):
        verifier.score(["a"], [3])  # type: ignore[list-item]
    assert verifier.score([], []).shape == (0,)
    fake_encoder.name = "another-encoder"
    with pytest.raises(RouterError, match="was trained with 'fake-encoder'"):
        Verifier(artifact, fake_encoder)


def test_a_source_without_good_and_bad_answers_cannot_teach() -> None:
    rows = [example("x", 1.0, "m", i) for i in range(5)]
    with pytest.raises(RouterError, match="cannot teach a verifier"):
        expand(np.zeros((5, 1)), rows, VerifierConfig())


# ---- evaluation splits ---------------------------------------------------------------------------


def test_splits_never_leak() -> None:
    rows = [
        example("a", float(i % 2), model, i, source)
        for i in range(12)
        for model in ("m1", "m2", "m3")
        for source in ("alpacaeval/a", "alpacaeval/b", "other")
    ]
    groups = np.array([r.group for r in rows])
    for split in request_folds(rows, 4):
        assert not set(groups[split.train]) & set(groups[split.test])
    assert [s.name for s in leave_one_source_out(rows, "alpacaeval/")] == [
        "alpacaeval/a",
        "alpacaeval/b",
    ]
    models = np.array([r.model for r in rows])
    sources = np.array([r.source for r in rows])
    splits = model_and_source_out(rows, "alpacaeval/", 2)
    assert len(splits) == 4
    for split in splits:
        assert not set(models[split.train]) & set(models[split.test])
        assert not set(sources[split.train]) & set(sources[split.test])
