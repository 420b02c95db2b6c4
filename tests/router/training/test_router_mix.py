"""The training mix: source multipliers and shares, the calibration mix, train-only sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from router.errors import RouterError
from router.features import featurize, get_feature
from router.training.data import Example
from router.training.evaluation import NAIVE, leave_one_source_out
from router.training.fit import (
    TrainConfig,
    feature_matrix,
    in_sources,
    source_multipliers,
    source_shares,
    train,
)
from tests.support.routerdata import run_router, synthetic, write_jsonl


def test_a_source_name_matches_its_sub_sources_only() -> None:
    assert in_sources("alpacaeval/oasst", ["alpacaeval"])
    assert in_sources("alpacaeval", ["alpacaeval"])
    assert not in_sources("alpacaeval2", ["alpacaeval"])
    m = source_multipliers(["a", "a/x", "b"], [("a", 3.0), ("a/x", 2.0)])
    assert m.tolist() == [3.0, 6.0, 1.0]


def test_shares_give_a_source_its_share_of_the_weight_in_any_mix() -> None:
    sources = ["big"] * 90 + ["self"] * 10
    w = source_shares(np.ones(100), sources, [("self", 0.4)])
    assert w[90:].sum() / w.sum() == pytest.approx(0.4)
    assert w.mean() == pytest.approx(1.0)
    assert np.allclose(w[:90], w[0])  # the others keep their proportions
    fewer = ["big"] * 30 + ["self"] * 10  # a fold without most of "big": still 40%
    w = source_shares(np.ones(40), fewer, [("self", 0.4)])
    assert w[30:].sum() / w.sum() == pytest.approx(0.4)
    absent = source_shares(np.ones(3), ["big"] * 3, [("self", 0.4)])
    assert absent.tolist() == [1.0, 1.0, 1.0]


def test_calibration_on_named_sources(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    examples = synthetic()
    artifact = train(examples, fake_encoder, TrainConfig(C=1.0, calibration_sources=("lookup",)))
    assert artifact.training["calibration"]["mix"].startswith("lookup, every source")
    assert artifact.training["calibration"]["n"] == 40
    x = feature_matrix(examples, artifact.features, fake_encoder)
    lookup = artifact.predict(x)[[e.source == "lookup" for e in examples]]
    half = artifact.threshold_for_fraction(0.5)
    assert np.mean(lookup >= half) == pytest.approx(0.5, abs=0.05)
    with pytest.raises(RouterError, match="no training source matches --calibrate-on"):
        train(examples, fake_encoder, TrainConfig(C=1.0, calibration_sources=("nope",)))


def test_train_only_sources_train_every_fold_and_are_never_held_out(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    examples = synthetic()
    mine = [
        Example((("user", f"hello there friend {i}"),), 1.0, 1.0, "mine", "mine") for i in range(10)
    ]
    examples += mine
    x = feature_matrix(examples, ("last_user",), fake_encoder)
    x_naive = feature_matrix(examples, NAIVE.features, fake_encoder)
    seen: list[str] = []
    results, held = leave_one_source_out(
        examples,
        x,
        x_naive,
        TrainConfig(C=1.0),
        on_source=seen.append,
        train_only=frozenset({"mine"}),
    )
    assert seen == ["code", "lookup", "maths"]
    assert [r.source for r in results] == seen
    assert not held["ours"][-10:].any()


def test_length_feature_reads_the_whole_request() -> None:
    feature = get_feature("length")
    assert feature.kind == "values" and feature.columns == ("log_chars", "log_words")
    x = featurize([(("user", "a b c"),), (("user", "word " * 1000),)], ["length"], np.zeros)
    assert x[0].tolist() == pytest.approx([np.log1p(5), np.log1p(3)])
    assert x[1, 0] > x[0, 0] and x[1, 1] == pytest.approx(np.log1p(1000))


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--source-weight", "self=0", "a positive number"),
        ("--source-weight", "self", "a positive number"),
        ("--source-share", "self=1.5", "a number between 0 and 1"),
    ],
)
def test_bad_mix_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "x", "weak": 1, "strong": 1}])
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "a"), option, value]
    assert run_router(argv) == 2
    assert f"{option} {value!r}; expected SOURCE=W with W {message}" in capsys.readouterr().err


def test_loso_with_a_train_only_set_and_the_mix_options(
    tmp_path: Path, shared_layout: Path, real_router: object, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"prompt": "Thanks!", "weak": 1, "strong": 1, "source": "mine"},
            {"prompt": "Prove Fermat's last theorem.", "weak": 0, "strong": 1, "source": "mine"},
        ],
    )
    out = tmp_path / "loso"
    argv = ["loso", "--data", str(shared_layout), "--train-only", str(mine), "--out", str(out)]
    argv += ["--C", "1", "--features", "last_user,length", "--source-share", "mine=0.2"]
    argv += ["--source-effects", "--pooled-mix", "1"]
    assert run_router(argv) == 0
    doc = json.loads((out / "loso.json").read_text())
    assert "mine" not in [r["source"] for r in doc["sources"]]
    assert doc["config"]["train_only"] == ["mine"]
    assert doc["config"]["source_shares"] == {"mine": 0.2}
    assert doc["pooled"][0]["ours"]["n"] == 11  # the held-out rows only
    assert (
        run_router(["loso", "--data", str(mine), "--train-only", str(mine), "--out", str(out)]) == 2
    )
    assert "also appear in --data" in capsys.readouterr().err


def test_common_sense_command_reports_each_half(
    real_router: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_router(["common-sense"]) == 0
    out = capsys.readouterr().out
    assert "AUC of p_strong:" in out and "simple routed to the small tier:" in out
    assert "| demanding | proof |" in out
    assert run_router(["common-sense", "--target-strong-fraction", "2"]) == 2
