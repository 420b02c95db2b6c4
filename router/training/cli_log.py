"""The ``--from-log`` options of ``tiergate router train`` and ``train-verifier`` (parsing only:
this module imports nothing heavy; router.training.log_commands does the work)."""

from __future__ import annotations

import argparse


def add_log_arguments(p: argparse.ArgumentParser, baseline_help: str) -> None:
    """The --from-log options `train` and `train-verifier` share."""
    p.add_argument(
        "--from-log",
        nargs="?",
        const="default",
        default=None,
        metavar="URL",
        help="train on the gateway's stored outcomes (shadow verdicts, feedback): its database "
        "URL (default: $TIERGATE_REQUEST_LOG_URL, else the SQLite file in $TIERGATE_LOG_DIR); "
        "with --data, the shared data joins",
    )
    p.add_argument(
        "--since",
        default="all",
        help="with --from-log: outcomes this recent only (30m, 12h, 7d, 2w, or all; default all)",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        metavar="SHARE",
        help="with --from-log: share of the log held out to compare with --baseline (0.2)",
    )
    p.add_argument(
        "--log-weight",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="with --from-log and --data: the log's share of the total weight (0.5)",
    )
    p.add_argument("--baseline", default=None, metavar="DIR", help=baseline_help)
