"""The router artifact: one JSON file holding everything a Router needs, checked on load.

``router.json`` holds the format version, the encoder's name and dimension, the feature names, the
standardisation and logistic-regression weights, the calibration table (score quantiles on a
reference traffic mix) and a training summary, plus a sha256 checksum of all of it. No pickle: a
corrupted, edited or foreign file is refused with a message that says what did not match.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import RouterError

FORMAT_VERSION = 1
ARTIFACT_FILE = "router.json"
_CALIBRATION_POINTS = 201


@dataclass
class Artifact:
    """A trained router without its encoder: features, linear model and calibration table.

    ``mean``/``scale`` standardise the feature vector; ``coef``/``intercept`` are the logistic
    regression on the standardised features. ``calibration`` maps a strong-call fraction to the
    score threshold that sends that fraction of the reference mix to the strong model.
    ``encoder_max_length``: the word pieces per text the encoder read in training (and must read
    when scoring); None, in artifacts from before it was recorded, means the encoder's default.
    """

    name: str
    encoder_name: str
    encoder_dimension: int
    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    calibration_fractions: np.ndarray
    calibration_thresholds: np.ndarray
    label: str = "strong_only"
    training: dict[str, Any] = field(default_factory=dict)
    encoder_max_length: int | None = None

    def predict(self, features: np.ndarray) -> np.ndarray:
        """p_strong for a feature matrix (float64 in [0, 1])."""
        x = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        if x.ndim != 2 or x.shape[1] != self.coef.shape[0]:
            raise RouterError(
                f"features of shape {x.shape}; the artifact expects {self.coef.shape[0]} columns"
            )
        z = np.clip(x @ self.coef + self.intercept, -40.0, 40.0)
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    def calibrate(
        self, scores: np.ndarray, description: str, weights: np.ndarray | None = None
    ) -> None:
        """Replace the calibration table with the (weighted) score quantiles of a traffic mix."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.size == 0:
            raise RouterError("calibration needs at least one scored prompt")
        w = np.ones_like(scores) if weights is None else np.asarray(weights, dtype=np.float64)
        order = np.argsort(-scores, kind="stable")
        # Share of the mix whose score is at least each sorted score, then read off by fraction.
        share = np.cumsum(w[order]) / w.sum()
        fractions = np.linspace(0.0, 1.0, _CALIBRATION_POINTS)
        thresholds = np.interp(fractions, share, scores[order])
        thresholds[0] = float(scores.max()) + 1e-6
        thresholds[-1] = 0.0
        self.calibration_fractions = fractions
        self.calibration_thresholds = np.minimum.accumulate(thresholds)
        self.training["calibration"] = {"mix": description, "n": int(scores.size)}

    def threshold_for_fraction(self, fraction: float) -> float:
        """The score threshold sending about ``fraction`` of the reference mix to the strong model.

        0 gives a threshold above every score, 1 gives 0.0; in between the table is interpolated, so
        the threshold never rises as the fraction grows.
        """
        if (
            not isinstance(fraction, int | float)
            or math.isnan(fraction)
            or not 0.0 <= fraction <= 1.0
        ):
            raise RouterError(f"strong-call fraction {fraction!r}; expected a number in [0, 1]")
        if fraction <= 0.0:
            return 1.0 + 1e-6
        if fraction >= 1.0:
            return 0.0
        value = float(np.interp(fraction, self.calibration_fractions, self.calibration_thresholds))
        # A threshold equal to the top score would still send that one prompt: nudge above it.
        return max(0.0, min(value, 1.0 + 1e-6))

    def to_json(self) -> dict[str, Any]:
        """The JSON document (with its checksum) that ``save`` writes."""
        body: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "encoder": {
                "name": self.encoder_name,
                "dimension": self.encoder_dimension,
                **({"max_length": self.encoder_max_length} if self.encoder_max_length else {}),
            },
            "features": list(self.features),
            "label": self.label,
            "model": {
                "mean": _floats(self.mean),
                "scale": _floats(self.scale),
                "coef": _floats(self.coef),
                "intercept": float(self.intercept),
            },
            "calibration": {
                "fractions": _floats(self.calibration_fractions),
                "thresholds": _floats(self.calibration_thresholds),
            },
            "training": self.training,
        }
        body["checksum"] = "sha256:" + _digest(body)
        return body

    def save(self, directory: str | Path, file_name: str = ARTIFACT_FILE) -> Path:
        """Write ``router.json`` (or ``file_name``) into ``directory`` atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / file_name
        write_atomic(target, json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")
        return target


def load_artifact(
    directory: str | Path,
    encoder_name: str | None = None,
    encoder_dimension: int | None = None,
    file_name: str = ARTIFACT_FILE,
) -> Artifact:
    """Read and check an artifact; RouterError on a corrupted, foreign or mismatched one.

    With ``encoder_name``/``encoder_dimension``, also refuse an artifact trained on another encoder.
    ``file_name``: ``router.json``, or ``verifier.json`` for the answer verifier (same format).
    """
    path = Path(directory) / file_name
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RouterError(f"{path}: cannot read the router artifact ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise RouterError(
            f"{path}: not valid JSON ({exc.msg}); the artifact is corrupted"
        ) from None
    if not isinstance(doc, dict):
        raise RouterError(f"{path}: expected a JSON object; the artifact is corrupted")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise RouterError(
            f"{path}: artifact format version {version!r}; this Tiergate reads {FORMAT_VERSION}"
        )
    checksum = doc.pop("checksum", None)
    if checksum != "sha256:" + _digest(doc):
        raise RouterError(
            f"{path}: checksum mismatch; the artifact is corrupted or was edited by hand"
        )
    try:
        encoder = doc["encoder"]
        model = doc["model"]
        artifact = Artifact(
            name=str(doc["name"]),
            encoder_name=str(encoder["name"]),
            encoder_dimension=int(encoder["dimension"]),
            features=[str(f) for f in doc["features"]],
            mean=np.asarray(model["mean"], dtype=np.float64),
            scale=np.asarray(model["scale"], dtype=np.float64),
            coef=np.asarray(model["coef"], dtype=np.float64),
            intercept=float(model["intercept"]),
            calibration_fractions=np.asarray(doc["calibration"]["fractions"], dtype=np.float64),
            calibration_thresholds=np.asarray(doc["calibration"]["thresholds"], dtype=np.float64),
            label=str(doc.get("label", "")),
            training=dict(doc.get("training", {})),
            encoder_max_length=(
                int(encoder["max_length"]) if encoder.get("max_length") is not None else None
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RouterError(
            f"{path}: missing or malformed field ({exc}); the artifact is corrupted"
        ) from None
    if encoder_name is not None and artifact.encoder_name != encoder_name:
        raise RouterError(
            f"{path}: trained with encoder {artifact.encoder_name!r} but the loaded encoder is "
            f"{encoder_name!r}; load the matching encoder (--encoder-path) or retrain"
        )
    if encoder_dimension is not None and artifact.encoder_dimension != encoder_dimension:
        raise RouterError(
            f"{path}: embedding dimension {artifact.encoder_dimension} but the encoder gives "
            f"{encoder_dimension}; load the matching encoder or retrain"
        )
    if not (artifact.mean.shape == artifact.scale.shape == artifact.coef.shape):
        raise RouterError(f"{path}: weight vectors of different lengths; the artifact is corrupted")
    return artifact


def write_atomic(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` through a temp file in the same directory and a rename."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artifacts and outputs are shared files
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
