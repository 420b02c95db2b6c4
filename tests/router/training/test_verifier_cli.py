"""``tiergate router train-verifier``, ``verify`` and ``eval-verifier`` on small fixtures, with the
real MiniLM (the embedding cache is private to each test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from router.training import verifier_cli
from tests.support.routerdata import run_router, write_jsonl

QUESTION = "A shop sells {n} apples at $2 each. How much money does it make?"


def answer_rows(count: int = 24) -> list[dict[str, Any]]:
    """Worked answers, a third of them wrong in a visible way, from two models (each triple of
    rows one model's, one wrong answer in each)."""
    rows = []
    for n in range(3, 3 + count):
        right = n % 3 != 0
        total = 2 * n if right else 2 * n + 1
        answer = f"It sells {n} apples at $2, so {n} * 2 = {total}.\n#### {total}"
        if not right:
            answer = f"Maybe {n} * 2 = {total}, I think, roughly"
        rows.append(
            {
                "prompt": QUESTION.format(n=n),
                "answer": answer,
                "outcome": 1.0 if right else 0.0,
                "model": ("small", "tiny")[(n // 3) % 2],
                "strong": 1,
            }
        )
    return rows


def test_defaults_match_the_fitting_code() -> None:
    from router.training.verifier_fit import DEFAULT_VERIFIER_FEATURES, VERIFIER_MAX_LENGTH

    assert ",".join(DEFAULT_VERIFIER_FEATURES) == verifier_cli.DEFAULT_FEATURES
    assert verifier_cli.DEFAULT_MAX_LENGTH == VERIFIER_MAX_LENGTH


def test_train_then_verify_in_input_order(
    tmp_path: Path, real_router: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "answers.jsonl", answer_rows())
    out = tmp_path / "mine"
    assert run_router(["train-verifier", "--data", str(data), "--out", str(out), "--C", "1"]) == 0
    doc = json.loads((out / "verifier.json").read_text())
    assert doc["name"] == "mine" and doc["label"] == "answer_unacceptable"
    assert doc["training"]["examples"] == 24 and doc["checksum"].startswith("sha256:")
    inp = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"prompt": QUESTION.format(n=40), "answer": "Maybe 40 * 2 = 81, I think, roughly"},
            {
                "messages": [{"role": "user", "content": QUESTION.format(n=40)}],
                "answer": "It sells 40 apples at $2, so 40 * 2 = 80.\n#### 80",
            },
            {"prompt": "Say hi", "answer": ""},
        ],
    )
    scores = tmp_path / "scores.jsonl"
    argv = ["verify", "--input", str(inp), "--output", str(scores), "--artifact", str(out)]
    assert run_router([*argv, "--batch-size", "2"]) == 0
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    assert len(rows) == 3 and all(set(r) == {"p_escalate"} for r in rows)
    assert rows[0]["p_escalate"] > rows[1]["p_escalate"]


def test_verify_uses_the_shipped_verifier_by_default(tmp_path: Path, real_router: Any) -> None:
    inp = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"prompt": QUESTION.format(n=7), "answer": "7 * 2 = 14.\n#### 14"},
            {"prompt": QUESTION.format(n=7), "answer": "7 * 2 = <<7*2=15>>15, maybe 15.5"},
        ],
    )
    out = tmp_path / "out.jsonl"
    assert run_router(["verify", "--input", str(inp), "--output", str(out)]) == 0
    good, bad = (json.loads(line)["p_escalate"] for line in out.read_text().splitlines())
    assert 0.0 <= good < bad <= 1.0


def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "q", "answer": "a"}, {"prompt": "q"}])
    out = tmp_path / "out.jsonl"
    assert run_router(["verify", "--input", str(inp), "--output", str(out)]) == 2
    assert f"{inp}:2: 'answer' is NoneType" in capsys.readouterr().err
    assert not out.exists()
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "answer": "a", "outcome": 7}])
    target = tmp_path / "artifact"
    assert run_router(["train-verifier", "--data", str(data), "--out", str(target)]) == 2
    assert f"{data}:1: 'outcome' is 7" in capsys.readouterr().err
    assert not target.exists()
    assert (
        run_router(["train-verifier", "--data", str(data), "--out", str(target), "--features", "x"])
        == 2
    )
    assert "unknown answer feature 'x'" in capsys.readouterr().err


def test_eval_verifier_writes_its_tables(
    tmp_path: Path, real_router: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = answer_rows(36)
    for index, row in enumerate(rows):  # every (source, model) has a wrong and a right answer
        row["source"] = ("alpacaeval/a", "alpacaeval/b", "other/x")[(index // 6) % 3]
    data = write_jsonl(tmp_path / "answers.jsonl", rows)
    out = tmp_path / "eval"
    argv = ["eval-verifier", "--data", str(data), "--out", str(out), "--C", "1", "--folds", "3"]
    assert run_router([*argv, "--model-folds", "2"]) == 0
    text = (out / "verifier_eval.md").read_text()
    assert "3-fold cross-validation grouped by request" in text and "prompt-only APGR" in text
    doc = json.loads((out / "verifier_eval.json").read_text())
    assert [p["title"].split(" ")[0] for p in doc["protocols"]] == [
        "3-fold",
        "held-out",
        "held",
        "held-out",
    ]
    assert doc["C"] == {"verifier": 1.0, "prompt_only": 1.0}
