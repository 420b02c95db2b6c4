"""Helpers the router tests share: writers for tiny JSONL and CSV fixture files, a synthetic
three-source mix, and where the shared routing data is."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router.training.data import Example


def write_jsonl(path: Path, rows: Sequence[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"


def shared_routing_data() -> Path:
    """The shared routing data: TIERGATE_ROUTING_DATA, else ``shared/data/routing`` beside the
    repository or beside one of its parents, so a git worktree nested deeper finds it too (tests
    that read it skip when it is absent)."""
    import os

    env = os.environ.get("TIERGATE_ROUTING_DATA")
    if env:
        return Path(env)
    repository = Path(__file__).resolve().parents[2]
    candidates = [parent / "shared" / "data" / "routing" for parent in repository.parents]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def synthetic(n_per_source: int = 40) -> list[Example]:
    """Three sources; code and maths requests need the strong model, lookups do not."""
    rng = np.random.default_rng(0)
    examples = []
    kinds = {
        "code": ("implement a python function def class return", 0.8),
        "maths": ("solve the equation compute how many integral", 0.6),
        "lookup": ("what is the capital name of the country", 0.1),
    }
    for source, (words, p_hard) in kinds.items():
        vocab = words.split()
        for i in range(n_per_source):
            text = " ".join(rng.choice(vocab, size=6)) + f" item {i}"
            hard = rng.random() < p_hard
            examples.append(Example((("user", text),), 0.0 if hard else 1.0, 1.0, source, source))
    return examples


def run_router(argv: list[str]) -> int:
    """`tiergate router ARGV...` in this process: the command's exit code."""
    from router.training import cli

    parser = argparse.ArgumentParser(prog="tiergate")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["router", *argv])
    code: int = args.func(args)
    return code
