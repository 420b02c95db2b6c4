"""How many characters the router's encoder reads: the measurement behind `router.model.
CHARS_PER_PIECE`.

The encoder reads the first 128 word pieces of a text (126 of them text, between [CLS] and
[SEP]). For every distinct text of the shared routing data (each benchmark prompt the router is
trained on, and AlpacaEval's instructions and model answers, as long user text), this tokenises
the whole text with MiniLM's tokenizer and reports how many characters its first 126 pieces span:
the router may cut a text to any length above the largest of them without changing a vector.

Run: `python -m bench.router_cut [--data ../shared/data/routing]` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from router.conversation import last_user_text
from router.encoder import resolve_encoder_path
from router.model import CHARS_PER_PIECE
from router.training.sources import load_path

TEXT_PIECES = 126
"""Word pieces of text in a 128-piece window ([CLS] and [SEP] take the other two)."""


def texts_of(root: Path) -> list[str]:
    texts = [last_user_text(e.conversation) for e in load_path(root)]
    outcomes = root / "alpacaeval" / "outcomes.jsonl"
    if outcomes.is_file():
        with outcomes.open() as lines:
            for line in lines:
                row = json.loads(line)
                texts += [row["instruction"], row["output"]]
    return list(dict.fromkeys(t for t in texts if t))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/routing"))
    args = parser.parse_args(argv)
    texts = texts_of(args.data)
    tokenizer = Tokenizer.from_file(str(resolve_encoder_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    started = time.perf_counter()
    spans, needed = [], []
    for encoding, text in zip(
        tokenizer.encode_batch(texts, add_special_tokens=False), texts, strict=True
    ):
        if len(encoding.offsets) > TEXT_PIECES:
            spans.append(encoding.offsets[TEXT_PIECES - 1][1])
            needed.append(spans[-1])
        else:
            needed.append(len(text))  # a text the encoder reads whole must be kept whole
    took = time.perf_counter() - started
    span = np.array(spans, dtype=np.float64)
    worst = int(np.argmax(needed))
    print(f"{len(texts)} distinct texts, tokenised in {took:.1f} s; {len(spans)} are longer than")
    print(f"{TEXT_PIECES} pieces. Characters spanned by their first {TEXT_PIECES} pieces:")
    for label, q in (("p50", 50), ("p99", 99), ("p99.9", 99.9)):
        print(f"  {label}: {np.percentile(span, q):.0f}")
    print(f"  max: {span.max():.0f} ({span.max() / TEXT_PIECES:.2f} characters a piece)")
    print(f"Characters any text needs kept: at most {max(needed)}; the router keeps")
    print(f"128 x {CHARS_PER_PIECE} = {128 * CHARS_PER_PIECE}. The worst text starts:")
    print(f"  {texts[worst][:120]!r}")


if __name__ == "__main__":
    main()
