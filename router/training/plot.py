"""The cost-quality curve image: quality against strong-call fraction, random diagonal and oracle.

matplotlib is imported inside the function with the Agg backend, so no display is needed and
importing the router never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from router.training.metrics import oracle_scores, quality_curve


def save_curve(
    path: str | Path,
    routers: Mapping[str, np.ndarray],
    weak: np.ndarray,
    strong: np.ndarray,
    title: str,
) -> Path:
    """Draw each router's curve (scores by name), the random router and the oracle; write a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    try:
        weak_acc, strong_acc = float(np.mean(weak)), float(np.mean(strong))
        for name, scores in routers.items():
            f, q = quality_curve(scores, weak, strong)
            ax.plot(f, q, label=name, linewidth=1.8)
        f, q = quality_curve(oracle_scores(weak, strong), weak, strong)
        ax.plot(f, q, label="oracle", linestyle=":", color="black")
        ax.plot([0, 1], [weak_acc, strong_acc], label="random", linestyle="--", color="grey")
        ax.set_xlabel("strong-model call fraction")
        ax.set_ylabel("quality (mean outcome)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp)
        tmp.replace(path)
    finally:
        plt.close(fig)
    return path
