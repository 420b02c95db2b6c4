"""The README's CLI reference is generated from `--help` and must stay true.

`make docs` rewrites the block between the markers; this test fails when it is stale, so a
changed command and its documentation land together.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gateway.cli.main import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"


def _walk(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, str]]:
    pages = [(prefix, parser.format_help())]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                pages += _walk(sub, f"{prefix} {name}")
    return pages


def render() -> str:
    os.environ["COLUMNS"] = "100"
    blocks = [START]
    for command, text in _walk(build_parser(), "tiergate"):
        blocks.append(f"#### `{command}`\n\n```text\n{text.rstrip()}\n```\n")
    blocks.append(END)
    return "\n".join(blocks)


def test_cli_reference_is_current() -> None:
    text = README.read_text("utf-8")
    assert START in text and END in text, "README lacks the CLI reference markers"
    current = text[text.index(START) : text.index(END) + len(END)]
    fresh = render()
    if os.environ.get("TIERGATE_UPDATE_DOCS") == "1":
        README.write_text(text.replace(current, fresh), "utf-8")
        return
    assert current == fresh, "the README's CLI reference is stale: run `make docs`"
