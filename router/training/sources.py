"""Loaders for the shared routing data: RouteLLM (MMLU, GSM8K, MT-Bench), LLMRouter, AlpacaEval.

``load_path`` accepts the data root, one dataset directory, one benchmark directory or a generic
JSONL file, and returns Examples with outcomes in [0, 1]. Which model is weak and which strong is
read from the files, not hard-coded: in RouteLLM's files the model with the lower mean outcome is
weak. LLMRouter scores nine models; the pair is a choice (LLMROUTER_WEAK/STRONG, the model card).
Prompts RouteLLM lists as contaminated are dropped.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from router.conversation import Conversation
from router.errors import DataError
from router.training.alpacaeval import load_alpacaeval
from router.training.data import Example, load_jsonl, outcome, read_jsonl

# The 7B generalist against the best large model: the pair with a clear gap on 12 of 14 tasks,
# like RouteLLM's Mixtral / GPT-4 (a 8B weak model is within 0.05 of the 51B one on half the tasks).
LLMROUTER_WEAK = "mistral-7b-instruct-v0.3"
LLMROUTER_STRONG = "llama-3.1-nemotron-51b-instruct"
# The 49B-70B models; the other six (7B-9B) are the small panel (the data README).
LLMROUTER_LARGE = frozenset(
    {"llama3-chatqa-1.5-70b", "llama-3.1-nemotron-51b-instruct", "llama-3.3-nemotron-super-49b-v1"}
)
_BOOL = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}


def load_path(path: str | Path) -> list[Example]:
    """Load every dataset found at ``path`` (see module docstring); DataError if none is there."""
    path = Path(path)
    if path.is_file():
        return load_jsonl(path)
    if not path.is_dir():
        raise DataError(
            path, None, "no such file or directory; expected a JSONL file or a data directory"
        )
    loaders: list[Callable[[], list[Example]]] = []
    if (path / "routellm").is_dir():
        loaders.append(lambda: load_routellm(path / "routellm"))
    if (path / "llmrouter").is_dir():
        loaders.append(lambda: load_llmrouter(path / "llmrouter"))
    # AlpacaEval (router/training/alpacaeval.py): the data root's alpacaeval/ or that directory.
    for directory in (path / "alpacaeval", path):
        if (directory / "outcomes.jsonl").is_file():
            loaders.append(partial(load_alpacaeval, directory))
    if any((path / n).is_dir() for n in ("mmlu", "gsm8k", "mt_bench")):
        loaders.append(lambda: load_routellm(path))
    if (path / "dcrouter_train.json").is_file() or (path / "dcrouter_test.json").is_file():
        loaders.append(lambda: load_llmrouter(path))
    if (path / "responses").is_dir():
        loaders.append(lambda: load_mmlu(path))
    if (path / "gsm8k_responses.csv").is_file():
        loaders.append(lambda: load_gsm8k(path))
    if (path / "judgements.jsonl").is_file():
        loaders.append(lambda: load_mt_bench(path))
    if not loaders:
        raise DataError(
            path,
            None,
            "no routing data found; expected routellm/ or llmrouter/ (the shared data layout), "
            "mmlu/responses/*.csv, gsm8k_responses.csv, judgements.jsonl, dcrouter_*.json, "
            "alpacaeval/outcomes.jsonl or a .jsonl file",
        )
    return [example for load in loaders for example in load()]


def load_routellm(root: Path) -> list[Example]:
    """MMLU, GSM8K and MT-Bench from a RouteLLM directory (whichever of the three are present)."""
    examples: list[Example] = []
    if (root / "mmlu").is_dir():
        examples += load_mmlu(root / "mmlu")
    if (root / "gsm8k").is_dir():
        examples += load_gsm8k(root / "gsm8k")
    if (root / "mt_bench").is_dir():
        examples += load_mt_bench(root / "mt_bench")
    return examples


def contaminated(directory: Path) -> set[str]:
    """Prompts listed in ``contaminated_prompts.jsonl`` (stripped), empty if the file is absent."""
    path = directory / "contaminated_prompts.jsonl"
    if not path.is_file():
        return set()
    prompts = set()
    for line, row in read_jsonl(path):
        prompt = row.get("eval_prompt")
        if not isinstance(prompt, str):
            raise DataError(
                path, line, "missing 'eval_prompt'; expected the contaminated prompt string"
            )
        prompts.add(prompt.strip())
    return prompts


def read_outcome_csv(
    path: Path, *, answers: bool = False
) -> tuple[list[str], list[tuple[str, dict[str, float]]], list[dict[str, str]]]:
    """Rows of a RouteLLM CSV: models are the non-``*_response`` columns. Returns the models,
    (prompt, outcome per model) rows and, with ``answers``, each row's answer per model (the
    ``<model>_response`` columns, then required; else empty dicts)."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise DataError(path, None, f"cannot read ({exc.strerror}); expected a CSV") from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        models = [c for c in header if c != "prompt" and not c.endswith("_response") and c]
        if "prompt" not in header or len(models) != 2:
            raise DataError(
                path,
                1,
                f"header {header!r}; expected 'prompt' and exactly two model outcome columns",
            )
        if answers and any(f"{m}_response" not in header for m in models):
            raise DataError(
                path, 1, f"header {header!r}; expected a '<model>_response' column for each model"
            )
        rows = []
        texts: list[dict[str, str]] = []
        for row in reader:
            line = reader.line_num
            outcomes = {}
            for model in models:
                value = _BOOL.get(str(row.get(model, "")).strip().lower())
                if value is None:
                    raise DataError(
                        path, line, f"{model!r} is {row.get(model)!r}; expected True or False"
                    )
                outcomes[model] = value
            rows.append((row["prompt"] or "", outcomes))
            texts.append({m: row[f"{m}_response"] for m in models} if answers else {})
    return models, rows, texts


def weak_strong(path: Path, rows: list[tuple[Any, dict[str, float]]]) -> tuple[str, str]:
    """Name the weak and the strong model of a two-model file: the lower mean outcome is weak."""
    models = sorted({m for _, outcomes in rows for m in outcomes})
    if len(models) != 2 or not rows:
        raise DataError(path, None, f"models {models}; expected outcomes of exactly two models")
    means = {m: sum(o[m] for _, o in rows) / len(rows) for m in models}
    weak, strong = sorted(models, key=lambda m: (means[m], m))
    return weak, strong


def _from_csvs(paths: list[Path], directory: Path, source: str, family: str) -> list[Example]:
    dropped = contaminated(directory)
    rows: list[tuple[str, dict[str, float]]] = []
    for path in paths:
        rows += read_outcome_csv(path)[1]
    if not rows:
        raise DataError(directory, None, "no rows; expected RouteLLM outcome CSVs")
    weak, strong = weak_strong(directory, rows)
    return [
        Example(((("user", prompt)),), o[weak], o[strong], source, family)
        for prompt, o in rows
        if prompt.strip() not in dropped
    ]


def load_mmlu(directory: Path) -> list[Example]:
    """RouteLLM MMLU: ``responses/mmlu_<subject>.csv`` (57 files), one source."""
    paths = sorted((directory / "responses").glob("*.csv"))
    if not paths:
        raise DataError(directory / "responses", None, "no CSV files; expected mmlu_<subject>.csv")
    return _from_csvs(paths, directory, "routellm/mmlu", "mmlu")


def load_gsm8k(directory: Path) -> list[Example]:
    """RouteLLM GSM8K: ``gsm8k_responses.csv``."""
    return _from_csvs([directory / "gsm8k_responses.csv"], directory, "routellm/gsm8k", "gsm8k")


def load_mt_bench(directory: Path) -> list[Example]:
    """RouteLLM MT-Bench: one example per question and turn; outcome = (judge score - 1) / 9.

    Turn 2 is routed as the whole conversation: the first question, the weak model's first answer
    (recovered from its judgement) and the follow-up.
    """
    questions: dict[int, list[str]] = {}
    qpath = directory / "question.jsonl"
    for line, row in read_jsonl(qpath):
        turns = row.get("turns")
        if not isinstance(row.get("question_id"), int) or not isinstance(turns, list) or not turns:
            raise DataError(
                qpath, line, "expected 'question_id' (int) and 'turns' (list of strings)"
            )
        questions[row["question_id"]] = [str(t) for t in turns]
    jpath = directory / "judgements.jsonl"
    scores: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    answers: dict[tuple[str, int], str] = {}
    for line, row in read_jsonl(jpath):
        qid, turn, model, score = (row.get(k) for k in ("question_id", "turn", "model", "score"))
        if qid not in questions or turn not in (1, 2) or not isinstance(model, str):
            raise DataError(
                jpath, line, "expected a known 'question_id', 'turn' 1 or 2 and a 'model'"
            )
        if isinstance(score, bool) or not isinstance(score, int | float) or not 1 <= score <= 10:
            raise DataError(
                jpath, line, f"'score' is {score!r}; expected a judge score from 1 to 10"
            )
        scores[(qid, turn)][model] = (float(score) - 1.0) / 9.0
        found = re.search(
            r"### Assistant A:\n(.*?)\n\n### User:", str(row.get("user_prompt", "")), re.S
        )
        if found:
            answers[(model, qid)] = found.group(1).strip()
    complete = [(k, v) for k, v in sorted(scores.items()) if len(v) == 2]
    weak, strong = weak_strong(jpath, complete)
    dropped = contaminated(directory)
    examples = []
    for (qid, turn), outcomes in complete:
        turns = questions[qid]
        if turns[0].strip() in dropped or turn > len(turns):
            continue
        conversation: Conversation = (("user", turns[0]),)
        if turn == 2:
            conversation += (("assistant", answers.get((weak, qid), "")), ("user", turns[1]))
        examples.append(
            Example(conversation, outcomes[weak], outcomes[strong], "routellm/mt-bench", "mt-bench")
        )
    return examples


def _panel_means(scores: dict[str, Any], path: Path, where: str) -> tuple[float, float]:
    """Mean outcome of the small and of the large models (LLMROUTER_LARGE) scored on one item."""
    panels: dict[bool, list[float]] = {False: [], True: []}
    for model, value in sorted(scores.items()):
        panels[model in LLMROUTER_LARGE].append(outcome(value, f"{where} {model}", path, None))
    if not panels[False] or not panels[True]:
        raise DataError(path, None, f"{where}: expected scores of small and large models")
    return sum(panels[False]) / len(panels[False]), sum(panels[True]) / len(panels[True])


def load_llmrouter(
    directory: Path, weak: str = LLMROUTER_WEAK, strong: str = LLMROUTER_STRONG
) -> list[Example]:
    """LLMRouter: ``dcrouter_{train,test}.json`` joined on the question text with ``query_*.jsonl``.

    Each task is its own source (``llmrouter/<task>``). Questions listed under two tasks are
    dropped: their family is ambiguous, which would leak them across a leave-one-source-out split.
    """
    examples = []
    for split in ("train", "test"):
        scores_path = directory / f"dcrouter_{split}.json"
        query_path = directory / f"query_{split}.jsonl"
        if not scores_path.is_file():
            continue
        tasks: dict[str, set[str]] = defaultdict(set)
        for line, row in read_jsonl(query_path):
            if not isinstance(row.get("query"), str) or not isinstance(row.get("task_name"), str):
                raise DataError(query_path, line, "expected 'query' and 'task_name' strings")
            tasks[row["query"]].add(row["task_name"])
        try:
            items = json.loads(scores_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(
                scores_path, None, f"not readable JSON ({exc}); expected a list of objects"
            ) from None
        if not isinstance(items, list):
            raise DataError(scores_path, None, "expected a JSON list of {question, scores} objects")
        for index, item in enumerate(items):
            where = f"item {index}"
            if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                raise DataError(
                    scores_path, None, f"{where}: expected an object with a 'question' string"
                )
            model_scores = item.get("scores")
            if (
                not isinstance(model_scores, dict)
                or weak not in model_scores
                or strong not in model_scores
            ):
                raise DataError(
                    scores_path, None, f"{where}: expected 'scores' with {weak!r} and {strong!r}"
                )
            names = tasks.get(item["question"])
            if not names:
                raise DataError(
                    scores_path,
                    None,
                    f"{where}: question not found in {query_path.name}; expected a match",
                )
            if len(names) > 1:
                continue
            task = next(iter(names))
            small, large = _panel_means(model_scores, scores_path, where)
            examples.append(
                Example(
                    (("user", item["question"]),),
                    outcome(model_scores[weak], f"{where} {weak}", scores_path, None),
                    outcome(model_scores[strong], f"{where} {strong}", scores_path, None),
                    f"llmrouter/{task}",
                    task,
                    small,
                    large,
                )
            )
    if not examples:
        raise DataError(
            directory, None, "no rows; expected dcrouter_train.json / dcrouter_test.json"
        )
    return examples
