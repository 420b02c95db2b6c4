"""Shared fixtures: tiny data layouts in tmp_path, a fake encoder, the real router once."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.routerdata import STRONG, WEAK, write_csv, write_jsonl


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep each test's embedding cache out of the user's ~/.cache."""
    monkeypatch.setenv("TIERGATE_CACHE_DIR", str(tmp_path / "embedding-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


class FakeEncoder:
    """A deterministic stand-in for MiniLM: hashed bag of words, L2-normalised; counts its calls."""

    def __init__(self, name: str = "fake-encoder", dimension: int = 16) -> None:
        self.name = name
        self.dimension = dimension
        self.max_seq_length = 256
        self.precision = "fp32"
        self.cache_tag = ""
        self.calls: list[list[str]] = []
        self.max_lengths: list[int | None] = []

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None
    ) -> np.ndarray:
        self.calls.append(list(texts))
        self.max_lengths.append(max_length)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, sum(map(ord, word)) % self.dimension] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def shared_layout(tmp_path: Path) -> Path:
    """A miniature of ../shared/data/routing: RouteLLM's three benchmarks and LLMRouter."""
    root = tmp_path / "routing"
    mmlu = root / "routellm" / "mmlu"
    write_csv(
        mmlu / "responses" / "mmlu_a.csv",
        ["prompt", WEAK, STRONG],
        [
            ["What is 2+2?\nA. 3\nB. 4\nAnswer:", True, True],
            ["Hard physics?\nA. x\nB. y\nAnswer:", False, True],
            ["Dropped prompt", False, True],
        ],
    )
    write_csv(
        mmlu / "responses" / "mmlu_b.csv",
        ["prompt", WEAK, STRONG],
        [["Capital of France?", True, False]],
    )
    write_jsonl(
        mmlu / "contaminated_prompts.jsonl",
        [{"train_prompt": "x", "eval_prompt": "Dropped prompt\n", "train_idx": 1, "eval_idx": 2}],
    )
    gsm = root / "routellm" / "gsm8k"
    write_csv(
        gsm / "gsm8k_responses.csv",
        ["prompt", WEAK, STRONG, f"{WEAK}_response", f"{STRONG}_response"],
        [["Tom has 3 apples...", False, True, "5", "4"], ["Easy sum 1+1", True, True, "2", "2"]],
    )
    mt = root / "routellm" / "mt_bench"
    write_jsonl(
        mt / "question.jsonl",
        [
            {
                "question_id": 81,
                "category": "writing",
                "turns": ["Write a poem.", "Make it shorter."],
            },
            {"question_id": 82, "category": "coding", "turns": ["Write a parser.", "Add tests."]},
        ],
    )
    judgements = []
    for qid in (81, 82):
        for turn in (1, 2):
            for model, score in ((WEAK, 6 if qid == 82 else 9), (STRONG, 10)):
                prompt = f"### User:\nq\n\n### Assistant A:\nanswer by {model}\n\n### User:\nfollow"
                judgements.append(
                    {
                        "question_id": qid,
                        "model": model,
                        "turn": turn,
                        "score": score,
                        "user_prompt": prompt,
                    }
                )
    write_jsonl(mt / "judgements.jsonl", judgements)
    write_jsonl(mt / "contaminated_prompts.jsonl", [])
    llm = root / "llmrouter"
    models = {"mistral-7b-instruct-v0.3": 0.0, "llama-3.1-nemotron-51b-instruct": 1.0}
    (llm).mkdir(parents=True)
    (llm / "dcrouter_train.json").write_text(
        json.dumps(
            [
                {"question": "def f(): implement quicksort", "scores": models, "cluster_id": 0},
                {
                    "question": "Who wrote Hamlet?",
                    "scores": {k: 1.0 for k in models},
                    "cluster_id": 1,
                },
                {"question": "Shared question", "scores": models, "cluster_id": 1},
            ]
        )
    )
    write_jsonl(
        llm / "query_train.jsonl",
        [
            {"task_name": "mbpp", "query": "def f(): implement quicksort"},
            {"task_name": "trivia_qa", "query": "Who wrote Hamlet?"},
            {"task_name": "mmlu", "query": "Shared question"},
            {"task_name": "openbook_qa", "query": "Shared question"},
        ],
    )
    return root


@pytest.fixture(scope="session")
def real_router() -> Iterator[Any]:
    """The shipped artifact with the real MiniLM in float32 (the reference the other precisions
    are judged against), loaded once for the whole session."""
    from router import load_router

    yield load_router(precision="fp32")
