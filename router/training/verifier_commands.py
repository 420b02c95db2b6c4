"""What each verifier subcommand does (the parser lives in router.training.verifier_cli).

Each function takes the parsed arguments, raises RouterError (DataError for bad input) on a
problem the user can fix, and returns an exit code. Output files are written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router.artifact import write_atomic
from router.errors import DataError, RouterError
from router.training.data import conversation_of, read_jsonl
from router.training.verifier_data import AnswerExample
from router.training.verifier_eval import Comparison
from router.training.verifier_fit import VerifierConfig


def _load(paths: Sequence[str]) -> list[AnswerExample]:
    from router.training.verifier_data import load_answer_path

    examples = [e for p in paths for e in load_answer_path(p)]
    print(f"loaded {len(examples)} answers from {len(paths)} path(s)", file=sys.stderr)
    return examples


def _config(args: argparse.Namespace) -> VerifierConfig:
    from router.verifier_features import get_answer_feature

    names = tuple(n.strip() for n in args.features.split(",") if n.strip())
    if not names:
        raise RouterError("--features is empty; expected comma-separated answer feature names")
    for name in names:
        get_answer_feature(name)
    if args.C is not None and args.C <= 0:
        raise RouterError(f"--C {args.C}; expected a positive number")
    return VerifierConfig(
        features=names,
        C=args.C,
        balance=not args.no_balance,
        source_weight_power=args.source_weight_power,
        max_length=args.max_length or None,
    )


def train_verifier(args: argparse.Namespace) -> int:
    """Train on --data and write --out/verifier.json."""
    from router.encoder import load_encoder
    from router.training.verifier_fit import train_verifier as train
    from router.verifier import VERIFIER_FILE

    config = _config(args)
    examples = _load(args.data)
    encoder = load_encoder(args.encoder_path)
    out = Path(args.out)
    artifact = train(examples, encoder, config, args.name or out.resolve().name, progress=True)
    path = artifact.save(out, VERIFIER_FILE)
    training = artifact.training
    print(f"wrote {path} (C={training['C']}, {training['examples']} answers)")
    return 0


def verify(args: argparse.Namespace) -> int:
    """One {"p_escalate": x} line per --input line, same order, into --output."""
    from router.verifier import load_verifier

    if args.batch_size < 1:
        raise RouterError(f"--batch-size {args.batch_size}; expected a positive integer")
    path = Path(args.input)
    conversations, answers = [], []
    for line, row in read_jsonl(path):
        conversations.append(conversation_of(row, path, line))
        answer = row.get("answer")
        if not isinstance(answer, str):
            raise DataError(
                path, line, f"'answer' is {type(answer).__name__}; expected the answer's text"
            )
        answers.append(answer)
    verifier = load_verifier(args.artifact, args.encoder_path)
    lines = []
    for start in range(0, len(answers), args.batch_size):
        stop = start + args.batch_size
        scores = verifier.score_conversations(conversations[start:stop], answers[start:stop])
        lines += [json.dumps({"p_escalate": float(p)}) for p in scores]
    write_atomic(Path(args.output), "".join(line + "\n" for line in lines))
    print(f"wrote {len(lines)} scores to {args.output}", file=sys.stderr)
    return 0


def eval_verifier(args: argparse.Namespace) -> int:
    """The model card's protocol; writes verifier_eval.md and verifier_eval.json into --out."""
    from router.encoder import load_encoder
    from router.training.verifier_eval import (
        leave_one_source_out,
        model_and_source_out,
        request_folds,
    )
    from router.training.verifier_fit import PROMPT_ONLY_FEATURES, answer_matrix, choose_c

    config = _config(args)
    baseline = VerifierConfig(
        features=PROMPT_ONLY_FEATURES,
        balance=config.balance,
        source_weight_power=config.source_weight_power,
        max_length=config.max_length,
    )
    examples = _load(args.data)
    encoder = load_encoder(args.encoder_path)
    x_v = answer_matrix(examples, config.features, encoder, config.max_length, progress=True)
    x_p = answer_matrix(examples, baseline.features, encoder, config.max_length, progress=True)
    c_v, cv_v = choose_c(x_v, examples, config)
    c_p, cv_p = choose_c(x_p, examples, baseline)
    print(f"C: verifier {c_v:g} {cv_v}, prompt-only {c_p:g} {cv_p}", file=sys.stderr)
    prefix = args.held_out_prefix
    families = sorted({e.source.split("/")[0] for e in examples})
    protocols = [
        (
            f"{args.folds}-fold cross-validation grouped by request",
            request_folds(examples, args.folds),
        ),
        (f"held-out source ({prefix}*), one at a time", leave_one_source_out(examples, prefix)),
        (
            f"held out by model and by source ({prefix}*, {args.model_folds} folds of models)",
            model_and_source_out(examples, prefix, args.model_folds),
        ),
    ]
    if len(families) > 1:
        protocols.append(("held-out dataset (trained on the others only)", _family_out(examples)))
    sections: list[str] = []
    reports: list[dict[str, Any]] = []
    for title, splits in protocols:
        if not splits:
            continue
        print(f"{title}: {len(splits)} fits of each model", file=sys.stderr)
        scores_v = _held_out(x_v, examples, config, c_v, splits)
        scores_p = _held_out(x_p, examples, baseline, c_p, splits)
        text, data = _report(title, examples, scores_v, scores_p)
        sections.append(text)
        reports.append(data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = (
        f"Verifier features: {', '.join(config.features)} (C {c_v:g}); prompt-only: "
        f"{', '.join(baseline.features)} (C {c_p:g}); balance within (source, model): "
        f"{config.balance}; encoder reads {config.max_length or 'all'} word pieces.\n"
    )
    text = header + "\n" + "\n\n".join(sections) + "\n"
    write_atomic(out / "verifier_eval.md", text)
    write_atomic(
        out / "verifier_eval.json",
        json.dumps({"C": {"verifier": c_v, "prompt_only": c_p}, "protocols": reports}, indent=1)
        + "\n",
    )
    print(text)
    return 0


def _held_out(
    x: np.ndarray, examples: Sequence[AnswerExample], config: VerifierConfig, c: float, splits: Any
) -> np.ndarray:
    from router.training.verifier_eval import held_out_scores

    return held_out_scores(x, examples, config, c, splits)


def _family_out(examples: Sequence[AnswerExample]) -> list[Any]:
    """Each dataset (the source's part before '/') held out, trained on the other datasets."""
    from router.training.verifier_eval import Split

    families = np.array([e.source.split("/")[0] for e in examples])
    return [Split(f, families != f, families == f) for f in sorted(set(families.tolist()))]


def _report(
    title: str,
    examples: Sequence[AnswerExample],
    scores_v: np.ndarray,
    scores_p: np.ndarray,
) -> tuple[str, dict[str, Any]]:
    """One protocol's tables: each held-out source, the pool of the sources answered by several
    models (mean over models, and all rows), and each model of that pool."""
    from router.training.verifier_eval import compare, per_model, table
    from router.training.verifier_fit import scored_rows

    sources = np.array([e.source for e in examples])
    models = np.array([e.model for e in examples])
    tested = np.isfinite(scores_v) & np.isfinite(scores_p) & scored_rows(examples)
    rows: list[Comparison] = []
    multi: list[str] = []
    for source in sorted(set(sources[tested].tolist())):
        mask = tested & (sources == source)
        if len(set(models[mask].tolist())) == 1:
            rows.append(compare(source, examples, scores_v, scores_p, mask))
            continue
        multi.append(source)
        name = f"{source} (mean over models)"
        rows.append(per_model(name, examples, scores_v, scores_p, mask)[0])
        rows.append(compare(f"{source} (all rows)", examples, scores_v, scores_p, mask))
    each_model: list[Comparison] = []
    if len(multi) > 1:
        pool = tested & np.isin(sources, multi)
        name = "pooled: " + ", ".join(multi)
        mean, each_model = per_model(
            f"{name} (mean over models)", examples, scores_v, scores_p, pool
        )
        rows += [mean, compare(f"{name} (all rows)", examples, scores_v, scores_p, pool)]
    elif multi:
        each_model = per_model("", examples, scores_v, scores_p, tested & (sources == multi[0]))[1]
    text = f"### {title}\n\n{table(rows)}"
    if each_model:
        text += f"\n\nEach model as its own traffic:\n\n{table(each_model)}"
    data = {
        "title": title,
        "rows": [r.as_dict() for r in rows],
        "models": [r.as_dict() for r in each_model],
    }
    return text, data
