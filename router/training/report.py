"""Evaluation tables as Markdown: what ``router eval`` prints and the model card embeds."""

from __future__ import annotations

import math
from collections.abc import Sequence

from router.training.evaluation import SourceResult
from router.training.metrics import RoutingMetrics


def _num(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def eval_table(results: Sequence[SourceResult]) -> str:
    """One row per source: n, weak/strong quality, APGR, CPT(50%), CPT(80%), AUC of each router."""
    has_naive = any(r.naive is not None for r in results)
    head = ["source", "n", "weak", "strong", "APGR", "CPT50", "CPT80", "AUC"]
    if has_naive:
        head += ["naive APGR", "naive CPT50", "naive CPT80"]
    head += ["random APGR", "oracle APGR", "oracle CPT50"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        m: RoutingMetrics = r.ours
        row = [
            r.source,
            str(m.n),
            _num(m.weak_accuracy),
            _num(m.strong_accuracy),
            _num(m.apgr),
            _num(m.cpt50),
            _num(m.cpt80),
            _num(m.auc),
        ]
        if has_naive:
            n = r.naive
            row += [_num(n.apgr), _num(n.cpt50), _num(n.cpt80)] if n else ["", "", ""]
        row += [_num(r.random.apgr), _num(r.oracle.apgr), _num(r.oracle.cpt50)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
