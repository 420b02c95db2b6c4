"""An outcome the gateway logged, as retraining reads it.

The gateway stores verdicts on its answers with what the models read (`gateway.chat.outcomes`);
`tiergate router train --from-log` receives them through a reader the `tiergate` command passes in
(`gateway.cli.router`) as these plain values, so that the offline code never opens the gateway's
database and the gateway never imports the offline code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LoggedOutcome:
    """One stored outcome as training reads it (the gateway converts its rows to these)."""

    request_id: str
    kind: str
    verdict: float | None
    weak_tier: str | None
    category: str | None = None
    embedding: np.ndarray | None = None
    embedding_model: str | None = None
    features: dict[str, Any] | None = None
    created_at: float = 0.0
