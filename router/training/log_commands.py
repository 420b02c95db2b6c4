"""`tiergate router train --from-log` and `train-verifier --from-log`: retraining on stored
outcomes (`router.training.from_log`), optionally with the shared data.

The outcomes come from the gateway's database through a reader the `tiergate` command passes in
(`args.read_log(url, since_s)`, `gateway.cli.router`): the router package never opens the
gateway's database itself. Each command compares the new model with the running artifact
(`--baseline`, default: the shipped one) on a held-out share of the log, prints the figures,
writes the new artifact and `from_log.json` (the same figures) into `--out`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router.artifact import Artifact, write_atomic
from router.errors import RouterError
from router.logged import LoggedOutcome
from router.training.from_log import (
    LOG_SOURCE,
    ROUTER_FEATURES,
    LogFit,
    Rows,
    artifact_from,
    router_rows,
    train_from_log,
    verifier_rows,
)

LogReader = Callable[[str | None, str], Sequence[LoggedOutcome]]
"""(database URL or None for the default, `--since` as given) -> the stored outcomes."""
REPORT_FILE = "from_log.json"


def read_outcomes(args: argparse.Namespace) -> Sequence[LoggedOutcome]:
    reader: LogReader | None = getattr(args, "read_log", None)
    if reader is None:
        raise RouterError("--from-log reads the gateway's database; run it as `tiergate router`")
    url = None if args.from_log in ("", "default") else args.from_log
    outcomes = reader(url, args.since)
    print(f"read {len(outcomes)} stored outcomes", file=sys.stderr)
    return outcomes


def _fit_config(args: argparse.Namespace) -> LogFit:
    if not 0.0 <= args.holdout < 1.0:
        raise RouterError(f"--holdout {args.holdout}; expected a share in [0, 1)")
    if not 0.0 < args.log_weight <= 1.0:
        raise RouterError(f"--log-weight {args.log_weight}; expected a share in (0, 1]")
    return LogFit(
        C=args.C,
        holdout=args.holdout,
        log_weight=args.log_weight,
    )


def train_router(args: argparse.Namespace) -> int:
    """A router artifact from the log's verdicts (and --data), compared with --baseline."""
    from router.artifact import load_artifact
    from router.model import default_artifact_dir

    baseline = load_artifact(args.baseline or default_artifact_dir())
    rows = router_rows(read_outcomes(args), baseline.encoder_name, baseline.encoder_max_length)
    shared = _shared_router_rows(args, baseline) if args.data else None
    out = Path(args.out)
    comparable = list(baseline.features) == list(ROUTER_FEATURES)
    describe: dict[str, Any] = {
        "examples": len(rows) + (len(shared) if shared else 0),
        "baseline": baseline.name,
    }
    if not comparable:
        # The log keeps the routed text's embedding, not the text: features such as its length
        # cannot be rebuilt, so an artifact reading them cannot score the held-out rows.
        describe["baseline_not_compared"] = (
            f"{baseline.name} reads {list(baseline.features)}; the log keeps "
            f"{list(ROUTER_FEATURES)} only"
        )
        print(f"  not compared with {describe['baseline_not_compared']}")
    fit, summary = train_from_log(
        rows,
        _fit_config(args),
        running=baseline if comparable else None,
        shared=shared,
        describe=describe,
    )
    artifact = artifact_from(
        fit,
        name=args.name or out.resolve().name,
        encoder=baseline.encoder_name,
        dimension=baseline.encoder_dimension,
        features=ROUTER_FEATURES,
        label="weak_wrong",
        max_length=baseline.encoder_max_length,
        calibrate_on=rows.x,
        summary=summary,
    )
    return _written(artifact.save(out), out, summary)


def _shared_router_rows(args: argparse.Namespace, baseline: Artifact) -> Rows:
    """The shared data's rows, embedded as the log's were (the baseline's encoder and limit)."""
    from router.encoder import load_encoder
    from router.training.fit import feature_matrix
    from router.training.sources import load_path

    examples = [e for p in args.data for e in load_path(p)]
    encoder = load_encoder(args.encoder_path)
    if encoder.name != baseline.encoder_name:
        raise RouterError(
            f"encoder {encoder.name!r}; the log's vectors are {baseline.encoder_name}"
        )
    x = feature_matrix(examples, ROUTER_FEATURES, encoder, True, baseline.encoder_max_length)
    # The shipped router's label, weak_wrong: only the weak model's own outcome.
    weak = np.array([e.weak for e in examples])
    return Rows(x, weak, [str(i) for i in range(len(examples))], [e.source for e in examples])


def train_verifier(args: argparse.Namespace) -> int:
    """A verifier artifact from the log's verdicts (and --data), compared with --baseline."""
    from router.verifier import VERIFIER_FILE, load_verifier_artifact

    baseline = load_verifier_artifact(args.baseline)
    rows = verifier_rows(read_outcomes(args), baseline.features)
    shared = _shared_verifier_rows(args, baseline) if args.data else None
    out = Path(args.out)
    fit, summary = train_from_log(
        rows,
        _fit_config(args),
        running=baseline,
        shared=shared,
        describe={
            "examples": len(rows) + (len(shared) if shared else 0),
            "baseline": baseline.name,
        },
    )
    artifact = artifact_from(
        fit,
        name=args.name or out.resolve().name,
        encoder=baseline.encoder_name,
        dimension=baseline.encoder_dimension,
        features=baseline.features,
        label=baseline.label,
        max_length=baseline.encoder_max_length,
        calibrate_on=rows.x,
        summary=summary,
    )
    return _written(artifact.save(out, VERIFIER_FILE), out, summary)


def _shared_verifier_rows(args: argparse.Namespace, baseline: Artifact) -> Rows:
    from router.encoder import load_encoder
    from router.training.verifier_data import load_answer_path
    from router.training.verifier_fit import answer_matrix

    examples = [e for p in args.data for e in load_answer_path(p)]
    encoder = load_encoder(args.encoder_path)
    x = answer_matrix(examples, baseline.features, encoder, baseline.encoder_max_length, True)
    weak = np.array([e.outcome for e in examples])
    return Rows(x, weak, [e.group for e in examples], [e.source for e in examples])


def _described(rows: Rows, shared: Rows | None, baseline: Artifact) -> dict[str, Any]:
    return {"examples": len(rows) + (len(shared) if shared else 0), "baseline": baseline.name}


def _written(path: Path, out: Path, summary: dict[str, Any]) -> int:
    report = summary["from_log"]
    write_atomic(out / REPORT_FILE, json.dumps(report, indent=1, sort_keys=True) + "\n")
    evaluation = report["evaluation"]
    print(f"wrote {path} ({report['rows']} log rows from {LOG_SOURCE})")
    for which in ("new", "running"):
        figures = evaluation.get(which)
        if isinstance(figures, dict) and "auc" in figures:
            apgr = figures.get("apgr")
            shown = "n/a" if apgr is None else f"{apgr:.3f}"
            print(
                f"  held-out ({evaluation['held_out']} rows) {which:>7}: "
                f"AUC {figures['auc']:.3f}  APGR {shown}"
            )
    if "note" in evaluation:
        print(f"  {evaluation['note']}")
    return 0
