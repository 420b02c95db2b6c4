"""Static int8 of the encoder: NNCF's post-training quantisation, calibrated on routing prompts.

``int8_model`` turns the float32 IR (router/openvino.py) into an int8 one once and keeps it in the
same on-disk cache, keyed by the float32 model's key, the recipe below, the calibration prompts and
the NNCF and OpenVINO versions: a changed recipe or prompt set quantises again, anything else reads
the cached IR (and imports neither NNCF nor torch). Quantising takes about a minute on two cores.

The recipe is what measured best on the shared routing data (bench/encoder_precision.py; the
figures are in the model card): NNCF's transformer scheme (SmoothQuant, activations asymmetric),
``subset_size`` calibration prompts read at the router's word-piece length, and the operations
listed in ``keep_float`` left in float32, where int8 moved the routing score most.

The calibration prompts are router/calibration.py's (written for this purpose and shipped, so the
int8 model is the same on every machine) unless TIERGATE_INT8_CALIBRATION names a JSONL file of
``prompt`` (or ``messages``) lines: then the IR is calibrated on those (their last user turns),
e.g. your own traffic or a sample of the routing data (bench/encoder_precision.py writes one).

NNCF imports ``openvino_telemetry`` when it can; it is made unimportable first, as for OpenVINO.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from router.conversation import ConversationError, last_user_text, to_conversation
from router.errors import RouterError
from router.settings import CALIBRATION_ENV, RouterSettings


@dataclass(frozen=True)
class Int8Recipe:
    """How the int8 model is made; every field is part of the cache key.

    ``subset_size``: calibration prompts NNCF reads (at most the prompts given).
    ``max_length``: word pieces of each calibration prompt (the router reads 128).
    ``smooth_quant_alpha``: SmoothQuant's migration strength for MatMuls (-1 = off).
    ``fast_bias_correction``: NNCF's faster bias correction (False: the slower, exact one).
    ``keep_float``: regular expressions over OpenVINO node names left in float32.
    """

    subset_size: int = 300
    max_length: int = 128
    smooth_quant_alpha: float = 0.95
    fast_bias_correction: bool = True
    keep_float: tuple[str, ...] = ()


DEFAULT_RECIPE = Int8Recipe()


def import_nncf() -> Any:
    """``import nncf`` with its telemetry blocked (router.openvino.import_openvino does it)."""
    from router.openvino import import_openvino

    import_openvino()
    import nncf

    return nncf


def int8_model(
    fp32_key: str,
    load_fp32: Any,
    tokenizer: Any,
    ov: Any,
    core: Any,
    cache: Path,
    recipe: Int8Recipe = DEFAULT_RECIPE,
    prompts: Sequence[str] | None = None,
) -> tuple[Any, str]:
    """The int8 IR for the float32 model cached under ``fp32_key`` (cached, else quantised) and
    the tag naming it ("int8-" and its recipe key: what the embedding cache keys on).

    ``load_fp32`` returns the float32 ov.Model (called only when quantising). ``prompts``: the
    calibration prompts (default: calibration_prompts()).
    """
    from router.openvino import cached_ir

    texts = list(prompts) if prompts is not None else calibration_prompts(recipe)
    if not texts:
        raise RouterError("int8 calibration needs at least one prompt; none were given")
    tag = f"int8-{recipe_key(recipe, texts, ov)}"

    def build() -> Any:
        return quantize(load_fp32(), tokenizer, texts, recipe)

    return cached_ir(cache / f"{fp32_key}-{tag}", build, ov, core), tag


def recipe_key(recipe: Int8Recipe, prompts: Sequence[str], ov: Any) -> str:
    """What makes one int8 IR differ from another: recipe, prompts and the tools' versions."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        nncf_version = version("nncf")
    except PackageNotFoundError:
        nncf_version = "absent"
    parts = [
        json.dumps(asdict(recipe), sort_keys=True),
        nncf_version,
        ov.get_version(),
        hashlib.sha256("\x00".join(prompts).encode("utf-8", "surrogatepass")).hexdigest(),
    ]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def quantize(model: Any, tokenizer: Any, prompts: Sequence[str], recipe: Int8Recipe) -> Any:
    """NNCF post-training quantisation of ``model`` (imports NNCF and, through it, torch)."""
    try:
        nncf = import_nncf()
    except ImportError as exc:
        raise RouterError(
            f"encoder precision int8 needs NNCF ({exc}); install it with `pip install nncf`, "
            "or choose TIERGATE_ENCODER_PRECISION=fp32 or bf16"
        ) from None
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )

    tokenizer.enable_truncation(recipe.max_length)
    items = []
    for encoding in tokenizer.encode_batch(list(prompts)):
        ids = np.asarray([encoding.ids], dtype=np.int64)
        items.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    advanced = AdvancedQuantizationParameters(
        smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=recipe.smooth_quant_alpha)
    )
    ignored = (
        nncf.IgnoredScope(patterns=list(recipe.keep_float), validate=False)
        if recipe.keep_float
        else None
    )
    return nncf.quantize(
        model,
        nncf.Dataset(items),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=min(recipe.subset_size, len(items)),
        fast_bias_correction=recipe.fast_bias_correction,
        ignored_scope=ignored,
        advanced_parameters=advanced,
    )


def calibration_prompts(recipe: Int8Recipe = DEFAULT_RECIPE) -> list[str]:
    """The prompts to calibrate on: TIERGATE_INT8_CALIBRATION's when set, else the shipped ones.

    The variable names a JSONL file of ``prompt`` (a string) or ``messages`` (an OpenAI list)
    lines; the first ``subset_size`` are used. Either way they are part of the IR's cache key.
    """
    path = RouterSettings().int8_calibration
    if not path:
        from router.calibration import CALIBRATION_PROMPTS

        return list(CALIBRATION_PROMPTS)
    texts: list[str] = []
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except OSError as exc:
        raise RouterError(f"{CALIBRATION_ENV}={path!r} is not readable: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item: Any = row.get("prompt", row.get("messages")) if isinstance(row, dict) else None
            texts.append(last_user_text(to_conversation(item)))
        except (ValueError, ConversationError) as exc:
            raise RouterError(
                f"{CALIBRATION_ENV} file {path} line {number}: expected a JSON object with "
                f"'prompt' (a string) or 'messages' (an OpenAI messages list) ({exc})"
            ) from None
    return texts[: recipe.subset_size]
