"""`tiergate logs summary` and `tiergate logs export`: reading the request log from the shell.

This module owns the two commands and the arithmetic behind them (cost, savings against sending
everything to the large tier, latency percentiles per route). It reads the log read-only, from the
SQLite file (`--db`) or any database URL (`--url`, such as the Postgres that replicas share), so it
can run beside live gateways. Importing it costs nothing: `register` only declares arguments.

`export` writes JSONL in the router's training format (`prompt`, `weak`, `strong`, `source`), but a
request log does not hold prompts or outcomes: `prompt`, `weak` and `strong` are written as null,
with the request's metadata beside them, for the user to fill in (join on `request_id`, which
clients see as `x-request-id`) before `tiergate router train` can use the file.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from gateway.storage import DatabaseURL

Row = Mapping[str, Any]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
EXPORT_SOURCE = "tiergate-log"


def parse_since(text: str) -> float | None:
    """`30m`, `1h`, `7d`, `2w` (seconds back from now), or `all` (None: no lower bound)."""
    if text.strip().lower() == "all":
        return None
    match = _SINCE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"--since {text!r}: give a number and a unit (s, m, h, d, w), such as 30m or 1h, or all"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def default_db_path() -> Path:
    """Where the gateway writes its log: `TIERGATE_LOG_DIR`, else the settings' default."""
    from gateway.settings import CommandSettings
    from gateway.storage import DB_FILENAME

    return CommandSettings().log_dir / DB_FILENAME


def log_url(url: str | None, db: Path | None) -> DatabaseURL:
    """`--url`, else `--db`, else TIERGATE_REQUEST_LOG_URL, else the default SQLite file."""
    from gateway.settings import CommandSettings
    from gateway.storage import DatabaseURL

    if url is not None:
        return DatabaseURL.parse(url)
    if db is not None:
        return DatabaseURL.sqlite(db)
    configured = CommandSettings().request_log_url
    return DatabaseURL.parse(configured) if configured else DatabaseURL.sqlite(default_db_path())


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    logs = sub.add_parser("logs", help="read the request log: cost, savings, latency, export")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True, metavar="SUBCOMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        where = p.add_mutually_exclusive_group()
        where.add_argument(
            "--url",
            default=None,
            help="the request log's database: sqlite:///path or postgresql://... "
            "(default: $TIERGATE_REQUEST_LOG_URL, else --db's default)",
        )
        where.add_argument(
            "--db",
            type=Path,
            default=None,
            help="request log file (default: $TIERGATE_LOG_DIR/requests.db, "
            "else ~/.cache/tiergate/logs/requests.db)",
        )
        p.add_argument(
            "--since",
            type=parse_since,
            default=parse_since("1h"),
            metavar="WINDOW",
            help="how far back: 30m, 1h (default), 7d, or all",
        )

    summary = logs_sub.add_parser(
        "summary", help="cost, savings vs all-large and latency p50/p95 by policy, tier, deployment"
    )
    common(summary)
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary.set_defaults(func=_summary)

    export = logs_sub.add_parser(
        "export",
        help="write JSONL rows in the router's training format (prompt and outcomes left null)",
    )
    common(export)
    export.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    export.set_defaults(func=_export)


# --- reading -----------------------------------------------------------------------------------


def read(url: DatabaseURL, since_s: float | None, now: float) -> list[Row]:
    """The log's rows in the window, oldest first; FileNotFoundError (saying what to do) for a
    SQLite log that does not exist, `StorageError` for a database that cannot be read."""
    from gateway.storage import read_requests

    try:
        return list(read_requests(url, None if since_s is None else now - since_s))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no request log at {url.path}: start the gateway first, or pass --db PATH or "
            "--url URL (or set TIERGATE_LOG_DIR or TIERGATE_REQUEST_LOG_URL)"
        ) from None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class RouteSummary:
    policy: str
    tier: str
    deployment: str
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    counterfactual_cost_usd: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.requests += 1
        # As the dashboard's error rate: 5xx and cut streams; a client hanging up is not an error.
        if row["status_code"] >= 500 or (row["partial"] and not row["client_aborted"]):
            self.errors += 1
        self.prompt_tokens += row["prompt_tokens"] or 0
        self.completion_tokens += row["completion_tokens"] or 0
        self.cost_usd += row["cost_usd"] or 0.0
        self.counterfactual_cost_usd += row["counterfactual_cost_usd"] or 0.0
        if row["served_tier"] is not None and not row["client_aborted"]:
            self.latencies.append(row["latency_s"])

    def as_dict(self) -> dict[str, Any]:
        savings = self.counterfactual_cost_usd - self.cost_usd
        return {
            "policy": self.policy,
            "tier": self.tier,
            "deployment": self.deployment,
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "counterfactual_cost_usd": self.counterfactual_cost_usd,
            "savings_usd": savings,
            "savings_pct": (
                100.0 * savings / self.counterfactual_cost_usd
                if self.counterfactual_cost_usd > 0
                else None
            ),
            "latency_p50_s": percentile(self.latencies, 50),
            "latency_p95_s": percentile(self.latencies, 95),
        }


def summarize(rows: Iterable[Row]) -> tuple[list[RouteSummary], RouteSummary]:
    """Per-route summaries (sorted by cost, highest first) and the total over all routes."""
    routes: dict[tuple[str, str, str], RouteSummary] = {}
    total = RouteSummary("all", "all", "all")
    for row in rows:
        key = (row["policy"] or "none", row["served_tier"] or "none", row["deployment"] or "none")
        routes.setdefault(key, RouteSummary(*key)).add(row)
        total.add(row)
    ordered = sorted(routes.values(), key=lambda r: (-r.cost_usd, r.policy, r.tier, r.deployment))
    return ordered, total


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "usd":
        return f"{value:.6f}"
    if kind == "pct":
        return f"{value:.1f}%"
    if kind == "ms":
        return f"{value * 1000:.0f}"
    return str(value)


_TABLE = (
    ("policy", "policy", "s"),
    ("tier", "tier", "s"),
    ("deployment", "deployment", "s"),
    ("requests", "requests", "s"),
    ("errors", "errors", "s"),
    ("in tok", "prompt_tokens", "s"),
    ("out tok", "completion_tokens", "s"),
    ("cost $", "cost_usd", "usd"),
    ("all-large $", "counterfactual_cost_usd", "usd"),
    ("saved $", "savings_usd", "usd"),
    ("saved", "savings_pct", "pct"),
    ("p50 ms", "latency_p50_s", "ms"),
    ("p95 ms", "latency_p95_s", "ms"),
)


def print_table(dicts: Sequence[dict[str, Any]], out: TextIO) -> None:
    cells = [[h for h, _, _ in _TABLE]]
    cells += [[_fmt(d[key], kind) for _, key, kind in _TABLE] for d in dicts]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_TABLE))]
    for n, row in enumerate(cells):
        padded = (
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        text = "  ".join(padded)
        out.write(text.rstrip() + "\n")
        if n == 0 or n == len(cells) - 2:
            out.write("  ".join("-" * w for w in widths) + "\n")


def _window_rows(args: argparse.Namespace, command: str) -> list[Row] | None:
    """The log's rows in the `--since` window, or None (after saying why) if there is no log."""
    from gateway.storage import StorageError

    try:
        return read(log_url(args.url, args.db), args.since, time.time())
    except (FileNotFoundError, StorageError) as exc:
        print(f"tiergate logs {command}: {exc}", file=sys.stderr)
        return None


def _summary(args: argparse.Namespace) -> int:
    rows = _window_rows(args, "summary")
    if rows is None:
        return 2
    routes, total = summarize(rows)
    window = "all time" if args.since is None else f"the last {_human(args.since)}"
    dicts = [r.as_dict() for r in routes]
    if args.json:
        json.dump({"window_s": args.since, "routes": dicts, "total": total.as_dict()}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    if not routes:
        print(f"no requests in {window}")
        return 0
    print(f"requests in {window} (savings against sending every request to the large tier)")
    print_table([*dicts, total.as_dict()], sys.stdout)
    return 0


def _human(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# --- export ------------------------------------------------------------------------------------


def export_row(row: Row) -> dict[str, Any]:
    """One training-format line: the outcome fields null, the route's metadata kept beside them."""
    meta = dict(row)
    for flag in ("stream", "tokens_estimated", "client_aborted", "partial"):
        if meta.get(flag) is not None:
            meta[flag] = bool(meta[flag])
    return {"prompt": None, "weak": None, "strong": None, "source": EXPORT_SOURCE, **meta}


def _export(args: argparse.Namespace) -> int:
    rows = _window_rows(args, "export")
    if rows is None:
        return 2
    out: Path = args.out
    tmp = out.with_name(out.name + ".partial")
    # Write beside the target and rename: an interrupted export leaves no half-written file.
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(export_row(row), sort_keys=False) + "\n")
    tmp.replace(out)
    print(
        f"wrote {len(rows)} rows to {out}; prompt, weak and strong are null: attach them "
        "(join on request_id) before tiergate router train"
    )
    return 0
