"""The router's own settings: the only place `router/` reads the environment.

`TIERGATE_ENCODER_PATH` (a local sentence-transformers directory instead of the bundled MiniLM),
`TIERGATE_ENCODER_RUNTIME` (`openvino` or `torch`), `TIERGATE_ENCODER_PRECISION` (`fp32`, `bf16`
or `int8`), `TIERGATE_ENCODER_THREADS` (cores one encoder uses), `TIERGATE_INT8_CALIBRATION` (a
JSONL file of prompts the int8 encoder is calibrated on), `TIERGATE_OPENVINO_CACHE` (converted
models), `TIERGATE_CACHE_DIR` (the training embedding cache) and `TIERGATE_ROUTES_CACHE` (fitted
operator-route classifiers). Read afresh by each function that needs them, so a test's or a
shell's change applies to the next load. An empty value means unset.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

ENCODER_PATH_ENV = "TIERGATE_ENCODER_PATH"
RUNTIME_ENV = "TIERGATE_ENCODER_RUNTIME"
PRECISION_ENV = "TIERGATE_ENCODER_PRECISION"
THREADS_ENV = "TIERGATE_ENCODER_THREADS"
CALIBRATION_ENV = "TIERGATE_INT8_CALIBRATION"


class RouterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIERGATE_", extra="ignore")

    encoder_path: str | None = None
    encoder_runtime: str | None = None
    openvino_cache: str | None = None
    cache_dir: str | None = None
    encoder_precision: str | None = None
    encoder_threads: str | None = None
    int8_calibration: str | None = None
    routes_cache: str | None = None

    def openvino_cache_dir(self) -> Path:
        """Where converted encoders are kept: TIERGATE_OPENVINO_CACHE, else
        ~/.cache/tiergate/openvino."""
        if self.openvino_cache:
            return Path(self.openvino_cache)
        return Path.home() / ".cache" / "tiergate" / "openvino"

    def embedding_cache_dir(self) -> Path:
        """The training embedding cache: TIERGATE_CACHE_DIR, else ~/.cache/tiergate/embeddings."""
        if self.cache_dir:
            return Path(self.cache_dir)
        return Path.home() / ".cache" / "tiergate" / "embeddings"

    def routes_cache_dir(self) -> Path:
        """Fitted route classifiers: TIERGATE_ROUTES_CACHE, else ~/.cache/tiergate/routes."""
        if self.routes_cache:
            return Path(self.routes_cache)
        return Path.home() / ".cache" / "tiergate" / "routes"
