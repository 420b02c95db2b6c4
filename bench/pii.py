"""Personal data: what finding it and replacing it costs a request under a `pii` policy.

The detector (policies/pii.py) runs on every message of a request whose policy sets `pii:
keep_local` or `pii: redact`, on the event loop, before the request is scored. Timed here on two
kinds of text at 1,000 and 10,000 characters: prose (the route classifier's background set of
generic requests, few digits) and this repository's README (code, numbers, versions, URLs), each
with and without personal data sprinkled in; and the redaction of the same texts. Run:

    .venv/bin/python -m bench.pii [--repeats 200] [--write]

``--write`` replaces the ``## Personal data`` section of bench/RESULTS.md with what is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.report import replace_section
from policies.pii import Detector, Redactor

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
SPRINKLE = (
    " Reach me at jane.doe@example.com or +44 20 7946 0958, IBAN GB82 WEST 1234 5698 7654 32."
)


def texts() -> dict[str, str]:
    background = yaml.safe_load((ROOT / "router" / "background" / "generic-v1.yaml").read_text())
    prose = " ".join(t for items in background["kinds"].values() for t in items)
    readme = (ROOT / "README.md").read_text()
    return {"prose": prose * 2, "README": readme}


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1000, times[int(0.99 * (len(times) - 1))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    detector = Detector()
    rows = []
    for name, source in texts().items():
        for size in (1000, 10_000):
            for sprinkled in (False, True):
                text = source[: size - (len(SPRINKLE) if sprinkled else 0)]
                text += SPRINKLE if sprinkled else ""
                found = len(detector.find(text))
                find = timed(lambda t=text: detector.find(t), args.repeats)  # type: ignore[misc]
                redact = timed(lambda t=text: Redactor(detector).redact(t), args.repeats)  # type: ignore[misc]
                rows.append((name, size, sprinkled, found, find, redact))
    lines = [
        "## Personal data",
        "",
        "Written by `bench/pii.py`: what the `pii` rule's detector (policies/pii.py) and the "
        "redaction cost per request text.",
        "",
        "```bash",
        f".venv/bin/python -m bench.pii --repeats {args.repeats} --write",
        "```",
        "",
        "| text | characters | personal data added | found | find p50 / p99 ms "
        "| redact p50 / p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, size, sprinkled, found, (f50, f99), (r50, r99) in rows:
        lines.append(
            f"| {name} | {size} | {'yes' if sprinkled else 'no'} | {found} "
            f"| {f50:.3f} / {f99:.3f} | {r50:.3f} / {r99:.3f} |"
        )
    lines += [
        "",
        f"Load average {os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} cores. Only requests "
        "whose policy sets `pii` pay this; kinds made of digits are looked for only around runs "
        "of four or more digits, so digit-heavy text (the README) costs more than prose.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(RESULTS, "Personal data", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
