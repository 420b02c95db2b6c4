"""The AlpacaEval loader, on a tiny outcomes.jsonl made here (and the shared data, if present)."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.errors import DataError
from router.training.alpacaeval import ALPACAEVAL_STRONG, ALPACAEVAL_WEAK, load_alpacaeval
from router.training.sources import load_path
from tests.support.routerdata import shared_routing_data, write_jsonl

SHARED = shared_routing_data() / "alpacaeval"


def rows() -> list[dict[str, object]]:
    """Two instructions from two datasets, judged for the default pair and two panel models."""
    out: list[dict[str, object]] = []
    for instruction, dataset, weak, strong, gemma, claude in (
        ("Say hello.", "oasst", 0.9, 0.5, 0.7, 0.3),
        ("Write a proof.", "selfinstruct", 0.0, 0.5, 0.1, 0.4),
    ):
        for model, value in (
            (ALPACAEVAL_WEAK, weak),
            (ALPACAEVAL_STRONG, strong),
            ("gemma-2b-it", gemma),
            ("claude-2", claude),
        ):
            out.append(
                {
                    "instruction": instruction,
                    "dataset": dataset,
                    "model": model,
                    "output": "...",
                    "outcome": value,
                }
            )
    return out


@pytest.fixture
def alpaca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "routing" / "alpacaeval"
    write_jsonl(directory / "outcomes.jsonl", rows())
    return directory


def test_one_example_per_instruction_with_the_pair_and_panels(alpaca_dir: Path) -> None:
    examples = {e.conversation[-1][1]: e for e in load_alpacaeval(alpaca_dir)}
    hello = examples["Say hello."]
    assert (hello.weak, hello.strong) == (0.9, 0.5)
    assert (hello.source, hello.family) == ("alpacaeval", "alpacaeval")
    assert hello.conversation == (("user", "Say hello."),)
    assert hello.small == pytest.approx((0.9 + 0.7) / 2)  # the weak model and gemma-2b-it
    assert hello.large == pytest.approx((0.5 + 0.3) / 2)  # the reference model and claude-2
    assert (examples["Write a proof."].weak, examples["Write a proof."].strong) == (0.0, 0.5)


def test_another_pair_and_one_source_per_instruction_set(alpaca_dir: Path) -> None:
    examples = load_alpacaeval(alpaca_dir, weak="gemma-2b-it", strong="claude-2", per_dataset=True)
    by_source = {e.source: e for e in examples}
    assert sorted(by_source) == ["alpacaeval/oasst", "alpacaeval/selfinstruct"]
    assert (by_source["alpacaeval/oasst"].weak, by_source["alpacaeval/oasst"].strong) == (0.7, 0.3)
    assert {e.family for e in examples} == {"alpacaeval"}


def test_load_path_finds_it_in_the_data_root_and_as_a_directory(alpaca_dir: Path) -> None:
    assert len(load_path(alpaca_dir.parent)) == 2
    assert len(load_path(alpaca_dir)) == 2


def test_unknown_model_names_the_models_on_offer(alpaca_dir: Path) -> None:
    with pytest.raises(DataError, match=r"weak model 'tiny-1b' not found; expected one of .*"):
        load_alpacaeval(alpaca_dir, weak="tiny-1b")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"instruction": "x", "dataset": "oasst", "model": "m"}, "missing 'outcome'"),
        ({"instruction": "x", "dataset": "oasst", "model": "m", "outcome": 1.5}, r"\[0, 1\]"),
        ({"instruction": "", "dataset": "oasst", "model": "m", "outcome": 0.5}, "non-empty"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path: Path, row: dict[str, object], message: str) -> None:
    write_jsonl(tmp_path / "outcomes.jsonl", [*rows()[:2], row])
    with pytest.raises(DataError, match=rf"outcomes.jsonl:3: .*{message}"):
        load_alpacaeval(tmp_path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared AlpacaEval data is not on this machine")
def test_shared_data_gives_one_example_per_instruction() -> None:
    examples = load_alpacaeval(SHARED)
    assert len(examples) == 569
    weak = sum(e.weak for e in examples) / len(examples)
    strong = sum(e.strong for e in examples) / len(examples)
    assert strong - weak > 0.15  # the pair has a clear quality gap to recover
