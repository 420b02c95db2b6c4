"""Loader for the AlpacaEval outcomes in the shared data: open-ended chat instructions.

``alpacaeval/outcomes.jsonl`` holds one row per (instruction, model): ``instruction``, ``dataset``
(helpful_base, oasst or selfinstruct), ``model`` and ``outcome``, the judge's preference for the
model's answer over GPT-4-turbo's reference, in [0, 1] (0.5 = as good as the reference). A
(weak, strong) pair of models turns each instruction into one Example with graded outcomes.

The default pair (ALPACAEVAL_WEAK / ALPACAEVAL_STRONG) was chosen by measurement (MODEL_CARD.md):
the deployed pair is a tiny local model against a large hosted one, so the weak model comes from
the small end of the list and the strong one is the GPT-4 class reference model. ``small`` and
``large`` carry the mean outcome of a panel of small and of large models, for the panel labels.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from router.errors import DataError
from router.training.data import Example, outcome, read_jsonl

ALPACAEVAL_WEAK = "FuseChat-Llama-3.2-1B-Instruct"
ALPACAEVAL_STRONG = "gpt4_1106_preview"
# Models of at most 3B parameters (the small end: closest to a local tier) and the hosted ones.
ALPACAEVAL_SMALL = frozenset(
    {
        "gemma-2b-it",
        "FuseChat-Llama-3.2-1B-Instruct",
        "FuseChat-Llama-3.2-3B-Instruct",
        "minichat-3b",
        "phi-2",
    }
)
ALPACAEVAL_LARGE = frozenset(
    {
        "gpt4_1106_preview",
        "gpt-3.5-turbo-1106",
        "claude-2",
        "claude-2.1",
        "claude-instant-1.2",
        "Mixtral-8x7B-Instruct-v0.1_concise",
    }
)
OUTCOMES_FILE = "outcomes.jsonl"


def load_alpacaeval(
    directory: Path,
    weak: str = ALPACAEVAL_WEAK,
    strong: str = ALPACAEVAL_STRONG,
    per_dataset: bool = False,
) -> list[Example]:
    """One Example per instruction from ``directory/outcomes.jsonl`` (see the module docstring).

    Source ``alpacaeval`` (or ``alpacaeval/<dataset>`` with ``per_dataset``), family
    ``alpacaeval`` either way, so leave-one-source-out withholds all of it together. DataError
    names the line of a malformed row, or the models on offer when ``weak``/``strong`` is unknown.
    """
    path = Path(directory) / OUTCOMES_FILE
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    datasets: dict[str, str] = {}
    for line, row in read_jsonl(path):
        instruction, dataset, model = (row.get(k) for k in ("instruction", "dataset", "model"))
        if not all(isinstance(v, str) and v for v in (instruction, dataset, model)):
            raise DataError(
                path, line, "expected non-empty 'instruction', 'dataset' and 'model' strings"
            )
        assert isinstance(instruction, str) and isinstance(dataset, str) and isinstance(model, str)
        if "outcome" not in row:
            raise DataError(path, line, "missing 'outcome'; expected a number in [0, 1]")
        scores[instruction][model] = outcome(row["outcome"], "outcome", path, line)
        datasets.setdefault(instruction, dataset)
    if not scores:
        raise DataError(path, None, "no rows; expected AlpacaEval outcome rows")
    models = sorted({m for by_model in scores.values() for m in by_model})
    for name, role in ((weak, "weak"), (strong, "strong")):
        if name not in models:
            raise DataError(
                path, None, f"{role} model {name!r} not found; expected one of {', '.join(models)}"
            )
    examples = []
    for instruction, by_model in scores.items():
        if weak not in by_model or strong not in by_model:
            continue
        source = f"alpacaeval/{datasets[instruction]}" if per_dataset else "alpacaeval"
        examples.append(
            Example(
                (("user", instruction),),
                by_model[weak],
                by_model[strong],
                source,
                "alpacaeval",
                _mean([v for m, v in by_model.items() if m in ALPACAEVAL_SMALL]),
                _mean([v for m, v in by_model.items() if m in ALPACAEVAL_LARGE]),
            )
        )
    return examples


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
