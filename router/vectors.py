"""Embeddings kept outside the router: how they are stored and how they say what made them.

The gateway keeps the routed text's embedding for the requests retraining learns from
(`gateway.chat.outcomes`), and `tiergate router train --from-log` reads it back. Both sides agree
here: a vector is stored as float32 little-endian bytes, and its `embedding_id` names the encoder
and the word pieces it read (`all-MiniLM-L6-v2@128`): a router trained on vectors must score with
the same encoder reading as much of the text, so training refuses vectors of another id.
"""

from __future__ import annotations

import numpy as np


def embedding_id(encoder_name: str, max_length: int | None) -> str:
    """`<encoder>@<word pieces>`, `default` for the encoder's own limit."""
    return f"{encoder_name}@{max_length if max_length is not None else 'default'}"


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float64)
