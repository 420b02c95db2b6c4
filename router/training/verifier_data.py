"""Answer-outcome rows for the verifier: the generic JSONL format and the shared data's two sources.

An AnswerExample is one answer to one request with its outcome in [0, 1] (1 = acceptable). The
generic format is one JSON object per line: ``prompt`` (a string) or ``messages`` (an OpenAI
messages list), ``answer`` (the answer's text), ``outcome``, and optionally ``model`` (who wrote
the answer), ``source`` (where the row came from; evaluation reports each apart) and ``strong``
(the escalation tier's outcome on the same request; APGR needs it, 1 is assumed without it).

From ``../shared/data/routing``: RouteLLM's GSM8K (both models' full answers and correctness;
Mixtral is the weak model, GPT-4 the strong one, read from the file) and AlpacaEval (20 models'
answers to 569 instructions with a judge's graded outcome, the strong model being the reference
every answer was judged against: ``gpt4_1106_preview``, outcome 0.5 everywhere by construction,
so its own answers teach nothing and are left out). Each AlpacaEval instruction set is a source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from router.conversation import Conversation
from router.errors import DataError
from router.training.data import conversation_of, outcome, read_jsonl
from router.training.sources import contaminated, read_outcome_csv, weak_strong

ALPACAEVAL_STRONG = "gpt4_1106_preview"


@dataclass(frozen=True)
class AnswerExample:
    """One answer with its outcome; ``strong`` is the strong model's outcome on the same request
    (None when unknown: the row trains but is not scored). ``group`` identifies the request, so
    cross-validation never splits two answers to the same request across folds."""

    conversation: Conversation
    answer: str
    outcome: float
    source: str
    model: str
    group: str
    strong: float | None = None


def request_key(conversation: Conversation) -> str:
    """A short stable identifier of a request (the grouping key of cross-validation)."""
    text = "\x00".join(f"{role}\x01{content}" for role, content in conversation)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def load_answer_path(path: str | Path) -> list[AnswerExample]:
    """Every answer dataset at ``path``: a generic JSONL file, the shared data root, or one of
    its dataset directories (``routellm``, ``routellm/gsm8k``, ``alpacaeval``)."""
    path = Path(path)
    if path.is_file():
        return load_answer_jsonl(path)
    if not path.is_dir():
        raise DataError(path, None, "no such file or directory; expected JSONL or a data directory")
    found: list[AnswerExample] = []
    for gsm8k in (path / "routellm" / "gsm8k", path / "gsm8k", path):
        if (gsm8k / "gsm8k_responses.csv").is_file():
            found += load_gsm8k_answers(gsm8k)
            break
    for alpaca in (path / "alpacaeval", path):
        if (alpaca / "outcomes.jsonl").is_file():
            found += load_alpacaeval(alpaca)
            break
    if not found:
        raise DataError(
            path,
            None,
            "no answer data found; expected routellm/gsm8k/gsm8k_responses.csv, "
            "alpacaeval/outcomes.jsonl (the shared data layout) or a .jsonl file",
        )
    return found


def load_answer_jsonl(path: str | Path, default_source: str | None = None) -> list[AnswerExample]:
    """The generic format (module docstring); a row without ``source`` gets the file's stem."""
    path = Path(path)
    examples = []
    for line, row in read_jsonl(path):
        conversation = conversation_of(row, path, line)
        answer = row.get("answer")
        if not isinstance(answer, str):
            raise DataError(
                path, line, f"'answer' is {type(answer).__name__}; expected the answer's text"
            )
        if "outcome" not in row:
            raise DataError(path, line, "missing 'outcome'; expected a number in [0, 1]")
        source = row.get("source", default_source or path.stem)
        model = row.get("model", "unknown")
        for field, value in (("source", source), ("model", model)):
            if not isinstance(value, str) or not value:
                raise DataError(path, line, f"{field!r} is {value!r}; expected a non-empty string")
        strong = row.get("strong")
        examples.append(
            AnswerExample(
                conversation=conversation,
                answer=answer,
                outcome=outcome(row["outcome"], "outcome", path, line),
                source=source,
                model=model,
                group=request_key(conversation),
                strong=None if strong is None else outcome(strong, "strong", path, line),
            )
        )
    if not examples:
        raise DataError(
            path, None, "no rows; expected JSONL with 'prompt' or 'messages', 'answer', 'outcome'"
        )
    return examples


def load_gsm8k_answers(directory: Path) -> list[AnswerExample]:
    """RouteLLM GSM8K: both models' answers; the weak model's rows carry the strong's outcome."""
    path = directory / "gsm8k_responses.csv"
    _, outcomes, texts = read_outcome_csv(path, answers=True)
    if not outcomes:
        raise DataError(path, None, "no rows; expected the RouteLLM GSM8K responses")
    weak, strong = weak_strong(path, outcomes)
    dropped = contaminated(directory)
    examples = []
    for (prompt, values), answers in zip(outcomes, texts, strict=True):
        if prompt.strip() in dropped:
            continue
        conversation: Conversation = (("user", prompt),)
        group = request_key(conversation)
        for model in (weak, strong):
            examples.append(
                AnswerExample(
                    conversation,
                    answers[model],
                    values[model],
                    "routellm/gsm8k",
                    model,
                    group,
                    values[strong] if model == weak else None,
                )
            )
    return examples


def load_alpacaeval(directory: Path, strong: str = ALPACAEVAL_STRONG) -> list[AnswerExample]:
    """AlpacaEval ``outcomes.jsonl``: one row per (instruction, model) but the strong model's."""
    path = directory / "outcomes.jsonl"
    raw = []
    for line, row in read_jsonl(path):
        fields = ("instruction", "dataset", "model", "output")
        if not all(isinstance(row.get(k), str) for k in fields):
            raise DataError(path, line, f"expected strings {', '.join(fields)} and an 'outcome'")
        raw.append((line, row, outcome(row.get("outcome"), "outcome", path, line)))
    reference = {row["instruction"]: value for _, row, value in raw if row["model"] == strong}
    if not reference:
        raise DataError(path, None, f"no answers of the strong model {strong!r}")
    examples = []
    for line, row, value in raw:
        if row["model"] == strong:
            continue
        if row["instruction"] not in reference:
            raise DataError(path, line, f"no {strong!r} outcome for this instruction")
        conversation: Conversation = (("user", row["instruction"]),)
        examples.append(
            AnswerExample(
                conversation,
                row["output"],
                value,
                f"alpacaeval/{row['dataset']}",
                row["model"],
                request_key(conversation),
                reference[row["instruction"]],
            )
        )
    return examples
