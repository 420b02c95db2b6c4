"""The artifact file: round trip, refusing corrupted or mismatched files, calibration."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from router.artifact import ARTIFACT_FILE, FORMAT_VERSION, Artifact, load_artifact
from router.errors import RouterError


def make_artifact(dim: int = 3) -> Artifact:
    rng = np.random.default_rng(0)
    artifact = Artifact(
        name="t",
        encoder_name="enc",
        encoder_dimension=dim,
        features=["last_user"],
        mean=rng.normal(size=dim),
        scale=np.abs(rng.normal(size=dim)) + 0.5,
        coef=rng.normal(size=dim),
        intercept=-0.3,
        calibration_fractions=np.array([0.0, 1.0]),
        calibration_thresholds=np.array([1.0, 0.0]),
        training={"examples": 10},
    )
    artifact.calibrate(rng.random(500), "uniform test scores")
    return artifact


def test_round_trip_preserves_predictions(tmp_path: Path) -> None:
    artifact = make_artifact()
    artifact.save(tmp_path)
    loaded = load_artifact(tmp_path, encoder_name="enc", encoder_dimension=3)
    x = np.random.default_rng(1).normal(size=(4, 3))
    assert np.array_equal(artifact.predict(x), loaded.predict(x))
    assert loaded.threshold_for_fraction(0.3) == artifact.threshold_for_fraction(0.3)
    assert not list(tmp_path.glob("*.tmp"))  # written through a temp file, then renamed
    assert loaded.encoder_max_length is None  # not recorded: the encoder's own limit


def test_the_encoder_input_length_is_recorded(tmp_path: Path) -> None:
    artifact = make_artifact()
    artifact.encoder_max_length = 128
    artifact.save(tmp_path)
    doc = json.loads((tmp_path / ARTIFACT_FILE).read_text())
    assert doc["encoder"] == {"name": "enc", "dimension": 3, "max_length": 128}
    assert load_artifact(tmp_path).encoder_max_length == 128


def test_refuses_a_corrupted_file(tmp_path: Path) -> None:
    make_artifact().save(tmp_path)
    path = tmp_path / ARTIFACT_FILE
    doc = json.loads(path.read_text())
    doc["model"]["intercept"] += 1.0
    path.write_text(json.dumps(doc))
    with pytest.raises(RouterError, match="checksum mismatch"):
        load_artifact(tmp_path)
    path.write_text(path.read_text()[:50])
    with pytest.raises(RouterError, match="not valid JSON"):
        load_artifact(tmp_path)


def test_refuses_another_format_version(tmp_path: Path) -> None:
    make_artifact().save(tmp_path)
    path = tmp_path / ARTIFACT_FILE
    doc = json.loads(path.read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(doc))
    with pytest.raises(RouterError, match=f"format version {FORMAT_VERSION + 1}"):
        load_artifact(tmp_path)


def test_refuses_another_encoder(tmp_path: Path) -> None:
    make_artifact().save(tmp_path)
    with pytest.raises(RouterError, match=r"trained with encoder 'enc'.*'other'"):
        load_artifact(tmp_path, encoder_name="other")
    with pytest.raises(RouterError, match="embedding dimension 3 but the encoder gives 384"):
        load_artifact(tmp_path, encoder_name="enc", encoder_dimension=384)


def test_missing_artifact(tmp_path: Path) -> None:
    with pytest.raises(RouterError, match="cannot read the router artifact"):
        load_artifact(tmp_path / "nowhere")


def test_threshold_for_fraction_is_monotonic_with_ends() -> None:
    artifact = make_artifact()
    fractions = np.linspace(0, 1, 101)
    thresholds = [artifact.threshold_for_fraction(float(f)) for f in fractions]
    assert all(a >= b for a, b in itertools.pairwise(thresholds))
    assert thresholds[0] > 1.0 and thresholds[-1] == 0.0
    scores = np.random.default_rng(0).random(500)  # the calibration mix
    assert np.mean(scores >= artifact.threshold_for_fraction(0.25)) == pytest.approx(0.25, abs=0.01)
    with pytest.raises(RouterError, match="expected a number in"):
        artifact.threshold_for_fraction(1.5)


def test_weighted_calibration_counts_each_source_equally() -> None:
    artifact = make_artifact()
    scores = np.array([0.9] * 10 + [0.1] * 90)
    weights = np.array([9.0] * 10 + [1.0] * 90)  # the two groups weigh the same
    artifact.calibrate(scores, "two groups", weights)
    assert artifact.threshold_for_fraction(0.4) == pytest.approx(0.9)
    assert artifact.threshold_for_fraction(0.6) < 0.9
