"""Retraining from stored outcomes: which rows count, the held-out comparison, the commands with a
reader standing in for the gateway's database."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from router.artifact import Artifact, load_artifact
from router.errors import RouterError
from router.logged import LoggedOutcome
from router.model import default_artifact_dir
from router.training import cli
from router.training.from_log import (
    ROUTER_FEATURES,
    LogFit,
    artifact_from,
    fit_rows,
    router_rows,
    train_from_log,
)
from router.vectors import embedding_id
from router.verifier import VERIFIER_FILE, load_verifier_artifact

SHIPPED = load_artifact(default_artifact_dir())
MODEL = embedding_id(SHIPPED.encoder_name, SHIPPED.encoder_max_length)


def outcome(i: int, verdict: float | None, **fields: Any) -> LoggedOutcome:
    base: dict[str, Any] = {
        "request_id": f"req-{i}",
        "kind": "shadow",
        "verdict": verdict,
        "weak_tier": "small",
        "embedding_model": MODEL,
    }
    return LoggedOutcome(**{**base, **fields})


def clustered(n: int, seed: int = 0) -> list[LoggedOutcome]:
    """Two clusters of vectors (like two topics): verdict 0 around one centre, 1 around another."""
    centres = np.random.default_rng(99).normal(0, 1, (2, SHIPPED.encoder_dimension))
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        bad = i % 4 == 0
        vector = centres[int(bad)] + rng.normal(0, 0.5, SHIPPED.encoder_dimension)
        category = "hard" if bad else "easy"
        rows.append(outcome(i, 0.0 if bad else 1.0, embedding=vector, category=category))
    return rows


def test_rows_count_only_verdicts_on_a_cheaper_answer_with_the_routers_vectors() -> None:
    vector = np.zeros(SHIPPED.encoder_dimension)
    rows = router_rows(
        [
            outcome(1, 1.0, embedding=vector),
            outcome(2, None, embedding=vector),
            outcome(3, 1.0, embedding=vector, weak_tier=None),
            outcome(4, 0.0),
            outcome(5, 0.0, embedding=vector, embedding_model="other@64"),
        ],
        SHIPPED.encoder_name,
        SHIPPED.encoder_max_length,
    )
    assert len(rows) == 1 and rows.groups == ["req-1"]
    assert rows.skipped == {
        "no verdict on a cheaper answer": 2,
        "no embedding": 1,
        f"embedding of other@64, not {MODEL}": 1,
    }


def running_artifact() -> Artifact:
    """A router of the log's own features (`last_user`) that learned the verdicts backwards."""
    rows = router_rows(clustered(40, seed=3), SHIPPED.encoder_name, SHIPPED.encoder_max_length)
    rows.weak = 1.0 - rows.weak
    fit = fit_rows(rows, np.arange(len(rows)), LogFit(C=1.0))
    return artifact_from(
        fit,
        name="running",
        encoder=SHIPPED.encoder_name,
        dimension=SHIPPED.encoder_dimension,
        features=ROUTER_FEATURES,
        label="weak_wrong",
        max_length=SHIPPED.encoder_max_length,
        calibrate_on=rows.x,
        summary={},
    )


def test_the_new_fit_is_compared_with_the_running_artifact_on_held_out_rows() -> None:
    rows = router_rows(clustered(80), SHIPPED.encoder_name, SHIPPED.encoder_max_length)
    running = running_artifact()
    fit, summary = train_from_log(
        rows, LogFit(), running=running, shared=None, describe={"baseline": running.name}
    )
    report = summary["from_log"]
    assert report["rows"] == 80 and report["categories"] == {"easy": 60, "hard": 20}
    evaluation = report["evaluation"]
    assert evaluation["held_out"] == 16
    assert evaluation["new"]["apgr"] >= evaluation["running"]["apgr"]
    assert set(report["cv_log_loss_by_C"]) == {"0.01", "0.1", "1", "10"}
    fresh = router_rows(clustered(40, seed=7), SHIPPED.encoder_name, SHIPPED.encoder_max_length)
    scores = fit.predict(fresh.x)
    assert scores[fresh.weak == 0].min() > scores[fresh.weak == 1].max()


def test_too_few_rows_or_one_verdict_cannot_teach() -> None:
    few = router_rows(clustered(5), SHIPPED.encoder_name, SHIPPED.encoder_max_length)
    with pytest.raises(RouterError, match="at least 8"):
        train_from_log(few, LogFit(), running=None, shared=None, describe={})
    same = [outcome(i, 1.0, embedding=np.ones(SHIPPED.encoder_dimension) * i) for i in range(20)]
    rows = router_rows(same, SHIPPED.encoder_name, SHIPPED.encoder_max_length)
    with pytest.raises(RouterError, match="same verdict"):
        train_from_log(rows, LogFit(), running=None, shared=None, describe={})


def run(argv: list[str], outcomes: list[LoggedOutcome]) -> int:
    seen: list[tuple[str | None, str]] = []

    def reader(url: str | None, since: str) -> list[LoggedOutcome]:
        seen.append((url, since))
        return outcomes

    parser = argparse.ArgumentParser(prog="tiergate")
    cli.register(parser.add_subparsers(dest="command", required=True), read_log=reader)
    args = parser.parse_args(["router", *argv])
    code: int = args.func(args)
    assert seen == [(None, "7d")]
    return code


def test_train_from_log_writes_a_router_and_its_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new"
    code = run(
        ["train", "--from-log", "--since", "7d", "--out", str(out), "--name", "mine"],
        clustered(60),
    )
    assert code == 0
    artifact = load_artifact(out)
    assert artifact.name == "mine" and artifact.features == ["last_user"]
    assert artifact.encoder_max_length == SHIPPED.encoder_max_length
    report = json.loads((out / "from_log.json").read_text())
    assert report["rows"] == 60 and report["evaluation"]["held_out"] == 12
    printed = capsys.readouterr().out
    # The shipped router also reads the text's length, which the log does not keep.
    assert "held-out (12 rows)     new" in printed and "not compared with" in printed
    running_artifact().save(tmp_path / "running")
    argv = ["train", "--from-log", "--out", str(out), "--baseline", str(tmp_path / "running")]
    assert run([*argv, "--since", "7d"], clustered(60)) == 0
    printed = capsys.readouterr().out
    assert "held-out (12 rows) running" in printed and "not compared" not in printed


def test_train_verifier_from_log_keeps_the_running_verifiers_features(tmp_path: Path) -> None:
    baseline = load_verifier_artifact()
    width = baseline.coef.shape[0]
    rng = np.random.default_rng(1)
    rows = []
    for i in range(40):
        bad = i % 3 == 0
        values = rng.normal(0, 1, width)
        values[-1] += 2.0 if bad else -2.0
        features = {"verifier": {"features": baseline.features, "values": values.tolist()}}
        rows.append(outcome(i, 0.0 if bad else 1.0, features=features))
    out = tmp_path / "verifier"
    assert run(["train-verifier", "--from-log", "--since", "7d", "--out", str(out)], rows) == 0
    artifact = load_artifact(out, file_name=VERIFIER_FILE)
    assert artifact.features == baseline.features and artifact.label == baseline.label


def test_train_needs_data_or_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="tiergate")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["router", "train", "--out", "x"])
    assert args.func(args) == 2
    assert "give --data, --from-log, or both" in capsys.readouterr().err
    args = parser.parse_args(["router", "train", "--from-log", "--out", "x"])
    assert args.func(args) == 2
    assert "run it as `tiergate router`" in capsys.readouterr().err
