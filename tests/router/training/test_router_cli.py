"""The ``tiergate router`` commands, through an argparse parser built as gateway.cli builds it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from router.training import cli
from tests.support.routerdata import run_router, write_jsonl


def test_import_is_light() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, router, router.training.cli; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'sklearn', 'matplotlib') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_label_choices_are_the_registered_labels_sorted() -> None:
    from router.training.labels import LABEL_NAMES

    assert cli.LABEL_CHOICES == LABEL_NAMES == tuple(sorted(LABEL_NAMES))


def test_subcommands_are_registered() -> None:
    parser = argparse.ArgumentParser(prog="tiergate")
    cli.register(parser.add_subparsers(dest="command"))
    for argv in (
        ["router", "train", "--data", "a.jsonl", "b", "--out", "d"],
        [
            "router",
            "loso",
            "--data",
            "d",
            "--out",
            "o",
            "--label",
            "small_fail",
            "--class-balanced",
        ],
        ["router", "eval", "--artifact", "d", "--data", "a.jsonl"],
        ["router", "score", "--input", "i.jsonl", "--output", "o.jsonl"],
        [
            "router",
            "calibrate",
            "--artifact",
            "d",
            "--target-strong-fraction",
            "0.3",
            "--data",
            "p",
        ],
    ):
        assert callable(parser.parse_args(argv).func)


def test_score_writes_one_line_per_input_line(
    tmp_path: Path, real_router: object, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"prompt": "What is the capital of France?"},
            {
                "messages": [
                    {"role": "system", "content": "You write code."},
                    {"role": "user", "content": [{"type": "text", "text": "Implement a B-tree."}]},
                ]
            },
            {"prompt": "Thanks!"},
        ],
    )
    out = tmp_path / "out.jsonl"
    assert (
        run_router(["score", "--input", str(inp), "--output", str(out), "--batch-size", "2"]) == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(set(r) == {"p_strong"} for r in rows)
    assert all(0.0 <= r["p_strong"] <= 1.0 for r in rows)


def test_score_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "fine"}, {"text": "no prompt"}])
    out = tmp_path / "out.jsonl"
    assert run_router(["score", "--input", str(inp), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{inp}:2: missing 'prompt' or 'messages'" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [inp]


def test_train_bad_outcome_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "x", "weak": 2, "strong": 1}])
    out = tmp_path / "artifact"
    assert run_router(["train", "--data", str(data), "--out", str(out)]) == 2
    assert f"{data}:1: 'weak' is 2; expected a number in [0, 1]" in capsys.readouterr().err
    assert not out.exists()


def test_eval_refuses_a_foreign_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "router.json").write_text('{"format_version": 99}')
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "x", "weak": 1, "strong": 1}])
    assert run_router(["eval", "--artifact", str(tmp_path), "--data", str(data)]) == 2
    assert "artifact format version 99" in capsys.readouterr().err


def test_train_eval_calibrate_round_trip(
    tmp_path: Path, shared_layout: Path, real_router: object, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine"
    assert run_router(["train", "--data", str(shared_layout), "--out", str(out), "--C", "1"]) == 0
    doc = json.loads((out / "router.json").read_text())
    assert doc["name"] == "mine" and doc["training"]["examples"] == 11
    curve = tmp_path / "curve.png"
    report = tmp_path / "eval.json"
    assert (
        run_router(
            [
                "eval",
                "--artifact",
                str(out),
                "--data",
                str(shared_layout),
                "--curve",
                str(curve),
                "--json",
                str(report),
            ]
        )
        == 0
    )
    assert curve.read_bytes()[:4] == b"\x89PNG"
    rows = json.loads(report.read_text())
    assert rows[-1]["source"] == "overall" and "apgr" in rows[-1]["ours"]
    assert "| routellm/gsm8k |" in capsys.readouterr().out
    traffic = write_jsonl(
        tmp_path / "traffic.jsonl", [{"prompt": f"question {i}"} for i in range(20)]
    )
    assert (
        run_router(
            [
                "calibrate",
                "--artifact",
                str(out),
                "--target-strong-fraction",
                "0.25",
                "--data",
                str(traffic),
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["target_strong_fraction"] == 0.25
    doc = json.loads((out / "router.json").read_text())
    assert doc["training"]["calibration"]["threshold"] == printed["threshold"]
    assert (
        run_router(
            [
                "calibrate",
                "--artifact",
                str(out),
                "--target-strong-fraction",
                "2",
                "--data",
                str(traffic),
            ]
        )
        == 2
    )
