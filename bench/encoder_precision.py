"""Encoder precisions and prompt lengths judged by the routing decisions they make.

For an artifact, on every distinct prompt of the shared routing data (RouteLLM, LLMRouter and the
AlpacaEval instructions), each variant of the encoder is compared with float32 at the artifact's
own word-piece length: max and mean |p_strong difference|, and the share of prompts whose routing
decision (``p_strong >= threshold``) is the same at every policy's threshold (the preset policies'
target fractions through the artifact's calibration table, plus the fixed thresholds of the config
given). Then held-out quality with the model card's protocol (leave-one-source-out, the artifact's
own training settings) on that variant's embeddings, and, given a common-sense set (JSONL of
``prompt`` and ``label`` simple|demanding), the AUC of p_strong for "demanding".

Variants: each ``--precisions`` at the artifact's length, and float32 at each ``--lengths`` (the
"read less" question: the shipped artifact reading fewer word pieces, and a router retrained on
them). Acceptance (issue 17): agreement >= 99.5% at every threshold, held-out APGR (mean and
pooled) at most 0.005 below float32's, common-sense AUC at most 0.01 below. Embeddings go through
the on-disk cache, keyed by precision and length, so a second run (or the lead's run on a new
artifact) embeds only what changed. Run:

    .venv/bin/python -m bench.encoder_precision --artifact router/artifacts/default \\
        [--common-sense FILE] [--lengths 96,64] [--json OUT.json] [--markdown OUT.md]

About 15 minutes on two cores with a cold cache (three precisions over ~22k prompts), then the
leave-one-source-out fits (about 1 minute per variant).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "routing"
CONFIG = ROOT / "deploy" / "examples" / "two-tier.yaml"
COMMON_SENSE = ROOT / "router" / "evalsets" / "common_sense.jsonl"
SELF_WRITTEN = ROOT / "router" / "trainsets" / "self_written.jsonl"
AGREEMENT_GOAL = 0.995
APGR_TOLERANCE = 0.005
AUC_TOLERANCE = 0.01
COMMON_SENSE_LABELS = {"simple": 0, "demanding": 1}


@dataclass(frozen=True)
class Variant:
    """One way of running the encoder: its arithmetic and the word pieces it reads."""

    precision: str
    max_length: int

    @property
    def label(self) -> str:
        return f"{self.precision}, {self.max_length} word pieces"


def distinct_conversations(data: Path) -> tuple[list[Any], list[Any]]:
    """(every distinct conversation to score, the labelled examples for held-out quality).

    The conversations are the examples' plus AlpacaEval's instructions (outcomes of many model
    pairs, not loaded as examples), each once.
    """
    from router.conversation import to_conversation
    from router.training.sources import load_path

    examples = load_path(data)
    seen = dict.fromkeys(e.conversation for e in examples)
    for name in ("reference.jsonl", "outcomes.jsonl"):
        path = data / "alpacaeval" / name
        if path.is_file():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        seen.setdefault(to_conversation(json.loads(line)["instruction"]))
    return list(seen), examples


def policy_thresholds(artifact: Any, config: Path | None) -> dict[str, float]:
    """Each policy's threshold: the presets' (and the config's) target fractions through the
    artifact's calibration table, and the config's fixed thresholds."""
    import yaml

    from gateway.config.load import preset_policies

    specs = dict(preset_policies())
    if config is not None:
        raw = yaml.safe_load(config.read_text("utf-8")) or {}
        specs.update(raw.get("policies") or {})
    thresholds = {}
    for name, spec in sorted(specs.items()):
        if spec.get("threshold") is not None:
            thresholds[f"{name} (threshold {spec['threshold']:g})"] = float(spec["threshold"])
        elif spec.get("target_strong_fraction") is not None:
            fraction = float(spec["target_strong_fraction"])
            threshold = artifact.threshold_for_fraction(fraction)
            thresholds[f"{name} (fraction {fraction:g}: {threshold:.3f})"] = threshold
    return thresholds


def embed_fn(encoder: Any, length: int) -> Any:
    """The featurisers' encode function for one variant, through the on-disk cache."""
    from router.training.embeddings import embed_cached

    def encode(texts: Sequence[str]) -> np.ndarray:
        return embed_cached(encoder, texts, max_length=length, progress=True)

    return encode


def held_out(
    examples: Sequence[Any], extra: Sequence[Any], artifact: Any, encode: Any, length: int
) -> dict[str, float]:
    """The model card's protocol on one variant's embeddings (`tiergate router loso` with the
    artifact's own training settings): the outcome sources held out one at a time, the ``extra``
    (train-only, self-written) rows in every training fold; mean APGR over the sources, pooled
    APGR (all held-out rows and balanced), and the sources below 0.5."""
    from router.features import featurize
    from router.training.evaluation import POOL_PER_SOURCE, leave_one_source_out, pooled, summary
    from router.training.fit import TrainConfig

    training = artifact.training
    config = TrainConfig(
        features=tuple(artifact.features),
        label=artifact.label,
        threshold=float(training.get("label_threshold", 0.5)),
        source_weight_power=float(training.get("source_weight_power", 0.0)),
        C=float(training.get("C", 1.0)),
        class_balanced=bool(training.get("class_balanced", False)),
        source_effects=bool(training.get("source_effects", False)),
        pooled_mix=float(training.get("pooled_mix", 0.0)),
        source_multipliers=tuple((training.get("source_multipliers") or {}).items()),
        source_shares=tuple((training.get("source_shares") or {}).items()),
        max_length=length,
    )
    rows = [*examples, *extra]
    train_only = frozenset(e.source for e in extra)
    x = featurize([e.conversation for e in rows], config.features, encode)
    # The protocol fits a naive baseline beside the router; here both are the router (cheap).
    results, held = leave_one_source_out(
        rows, x, x, config, naive_config=config, train_only=train_only
    )
    n = len(examples)  # the evaluated rows come first
    held = {k: v[:n] for k, v in held.items()}
    stats = summary(results)
    return {
        "mean_apgr": stats["mean_apgr"],
        "pooled_apgr": pooled(examples, held, None).ours.apgr,
        "balanced_apgr": pooled(examples, held, POOL_PER_SOURCE).ours.apgr,
        "sources_below_half": float(sum(1 for r in results if r.ours.apgr < 0.5)),
    }


def read_common_sense(path: Path) -> tuple[list[Any], np.ndarray]:
    """The common-sense set: conversations and labels (1 = demanding)."""
    from router.conversation import to_conversation
    from router.errors import DataError
    from router.training.data import read_jsonl

    conversations, labels = [], []
    for line, row in read_jsonl(path):
        prompt, label = row.get("prompt"), row.get("label")
        if not isinstance(prompt, str) or label not in COMMON_SENSE_LABELS:
            raise DataError(
                path, line, "expected 'prompt' (a string) and 'label' (simple or demanding)"
            )
        conversations.append(to_conversation(prompt))
        labels.append(COMMON_SENSE_LABELS[label])
    return conversations, np.asarray(labels)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of ``scores`` for label 1 (ties count half); NaN with one class only."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels.tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of every variant, as JSON-safe data."""
    from router.artifact import load_artifact
    from router.encoder import load_encoder
    from router.features import featurize

    artifact = load_artifact(args.artifact)
    base_length = int(artifact.encoder_max_length or 256)
    variants = [Variant(p, base_length) for p in args.precisions]
    variants += [Variant("fp32", n) for n in args.lengths if n != base_length]
    if variants[0] != Variant("fp32", base_length):
        variants.insert(0, Variant("fp32", base_length))
    conversations, examples = distinct_conversations(args.data)
    from router.training.sources import load_path

    extra = [e for path in args.train_only for e in load_path(path)]
    thresholds = policy_thresholds(artifact, args.config)
    common = read_common_sense(args.common_sense) if args.common_sense else None
    print(f"{len(extra)} train-only rows", flush=True)
    print(f"{len(conversations)} distinct prompts, {len(examples)} examples", flush=True)
    rows = []
    reference: dict[str, np.ndarray] = {}
    encoders: dict[str, Any] = {}
    for variant in variants:
        start = time.perf_counter()
        if variant.precision not in encoders:
            encoders.clear()  # one compiled model in memory at a time
            encoders[variant.precision] = load_encoder(precision=variant.precision)
        encoder = encoders[variant.precision]
        if encoder.precision != variant.precision:
            raise SystemExit(f"{variant.precision} unavailable here (got {encoder.precision})")
        encode = embed_fn(encoder, variant.max_length)
        scores = artifact.predict(featurize(conversations, artifact.features, encode))
        row: dict[str, Any] = {
            "precision": variant.precision,
            "max_length": variant.max_length,
            "cache_tag": encoder.cache_tag,
        }
        if not reference:
            reference["scores"] = scores
        diff = np.abs(scores - reference["scores"])
        row["max_abs_diff"] = float(diff.max())
        row["mean_abs_diff"] = float(diff.mean())
        row["agreement"] = {
            name: float(np.mean((scores >= t) == (reference["scores"] >= t)))
            for name, t in thresholds.items()
        }
        if not args.no_loso:
            row["held_out"] = held_out(examples, extra, artifact, encode, variant.max_length)
        if common is not None:
            row["common_sense_auc"] = auc(
                artifact.predict(featurize(common[0], artifact.features, encode)), common[1]
            )
        row["seconds"] = round(time.perf_counter() - start, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return {
        "artifact": str(args.artifact),
        "prompts": len(conversations),
        "examples": len(examples),
        "thresholds": thresholds,
        "common_sense": str(args.common_sense) if args.common_sense else None,
        "common_sense_n": len(common[1]) if common is not None else 0,
        "int8_calibration": str(args.int8_calibration or "the shipped prompts"),
        "rows": [judge(row, rows[0]) for row in rows],
        "lengths": list(args.lengths),
        "versions": _versions(),
        "load_average": os.getloadavg()[0],
    }


def judge(row: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The row with its differences from float32 and whether each goal is met.

    Quality goals bound the loss only: a variant may not score more than the tolerance below
    float32 (a gain passes). A hair of slack absorbs float rounding (an AUC on 20 prompts moves
    in steps of 0.01).
    """
    slack = 1e-9
    verdict: dict[str, bool] = {"agreement": min(row["agreement"].values()) >= AGREEMENT_GOAL}
    if "held_out" in row:
        delta = {k: row["held_out"][k] - base["held_out"][k] for k in row["held_out"]}
        row["held_out_delta"] = delta
        verdict["held_out"] = all(
            delta[k] >= -APGR_TOLERANCE - slack for k in ("mean_apgr", "pooled_apgr")
        )
    if "common_sense_auc" in row:
        row["common_sense_auc_delta"] = row["common_sense_auc"] - base["common_sense_auc"]
        verdict["common_sense"] = row["common_sense_auc_delta"] >= -AUC_TOLERANCE - slack
    row["acceptable"] = verdict
    return row


def render(result: dict[str, Any]) -> str:
    """The Markdown table the model card embeds, with the command that made it."""
    names = list(result["thresholds"])
    head = ["encoder", "max / mean abs dp_strong", *(f"agree: {n}" for n in names)]
    has_loso = any("held_out" in r for r in result["rows"])
    has_auc = any("common_sense_auc" in r for r in result["rows"])
    if has_loso:
        head += ["held-out APGR: mean / pooled / balanced (vs fp32)"]
    if has_auc:
        head += [f"common-sense AUC (n={result['common_sense_n']}, vs fp32)"]
    head += ["acceptable"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in result["rows"]:
        cells = [
            f"{row['precision']}, {row['max_length']}",
            f"{row['max_abs_diff']:.4f} / {row['mean_abs_diff']:.5f}",
            *(f"{100 * row['agreement'][n]:.2f}%" for n in names),
        ]
        if has_loso:
            h, d = row["held_out"], row["held_out_delta"]
            cells.append(
                f"{h['mean_apgr']:.3f} / {h['pooled_apgr']:.3f} / {h['balanced_apgr']:.3f} "
                f"({d['mean_apgr']:+.3f} / {d['pooled_apgr']:+.3f} / {d['balanced_apgr']:+.3f})"
            )
        if has_auc:
            cells.append(f"{row['common_sense_auc']:.3f} ({row['common_sense_auc_delta']:+.3f})")
        cells.append("yes" if all(row["acceptable"].values()) else _failed(row["acceptable"]))
        lines.append("| " + " | ".join(cells) + " |")
    held = (
        f"Held-out APGR: leave-one-source-out over {result['examples']:,} examples with the "
        f"artifact's own training settings, goal: mean and pooled at most {APGR_TOLERANCE} below "
        "float32's. "
        if has_loso
        else ""
    )
    auc_goal = (
        f"Common-sense AUC: goal at most {AUC_TOLERANCE} below float32's. " if has_auc else ""
    )
    return "\n".join(
        [
            f"Every distinct prompt of the shared routing data ({result['prompts']:,}), scored by "
            f"`{result['artifact']}` with each encoder variant against float32 at the artifact's "
            "length; agreement = share of prompts routed to the same tier at that policy's "
            f"threshold (goal >= {100 * AGREEMENT_GOAL:.1f}%). {held}{auc_goal}int8: NNCF static "
            f"quantisation calibrated on {result['int8_calibration']}. Versions: "
            f"{result['versions']}; load average {result['load_average']:.1f}.",
            "",
            *lines,
        ]
    )


def calibration_file(path: Path, size: int = 300) -> Path:
    """A JSONL file of calibration prompts: ``path`` itself, or for a routing-data directory a
    seeded sample of ``size`` of its distinct last user turns, written beside the bench's output
    (the int8 IR's cache key includes the prompts, so the same sample reuses the same IR)."""
    if path.is_file():
        return path.resolve()
    from router.features import get_feature
    from router.training.sources import load_path

    text_of = get_feature("last_user").text
    assert text_of is not None
    texts = sorted({text_of(example.conversation) for example in load_path(path)})
    sample = random.Random(0).sample(texts, min(size, len(texts)))
    out = Path(tempfile.gettempdir()) / f"tiergate-int8-calibration-{len(sample)}.jsonl"
    out.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in sample), "utf-8")
    return out


def card(result: dict[str, Any], table: str) -> str:
    """The model card's section: the table, which precision is the default and why."""
    from router.encoder import DEFAULT_PRECISION

    rows = [r for r in result["rows"] if r["max_length"] == result["rows"][0]["max_length"]]
    passing = [r["precision"] for r in rows if all(r["acceptable"].values())]
    command = (
        "python -m bench.encoder_precision --artifact router/artifacts/default "
        + (f"--lengths {','.join(map(str, result['lengths']))} " if result.get("lengths") else "")
        + "--write-card"
    )
    return "\n".join(
        [
            "## Encoder precision",
            "",
            "The encoder may run in float32, bfloat16 or int8 (`TIERGATE_ENCODER_PRECISION`); a "
            "lower precision moves p_strong a little, so it is judged by the decisions it "
            "changes (issue 17): acceptable when, on every prompt of the shared routing data, "
            "the tier chosen at every policy's threshold agrees with float32's on at least "
            f"{100 * AGREEMENT_GOAL:.1f}% of prompts, held-out APGR (this card's protocol) is "
            f"at most {APGR_TOLERANCE} below float32's and the common-sense AUC at most "
            f"{AUC_TOLERANCE} below. Rows with fewer word pieces are issue 17's 'read less' "
            "(float32): agreement and the common-sense AUC are the shipped weights reading that "
            "many, the held-out APGR a router retrained on that many (the protocol refits every "
            "fold). A decision costs in proportion to the word pieces read.",
            "",
            "```bash",
            command,
            "```",
            "",
            table,
            "",
            f"Acceptable at the artifact's length: {', '.join(passing) or 'none'}. The default is "
            f"**{DEFAULT_PRECISION}** (`router.encoder.DEFAULT_PRECISION`), the fastest "
            "acceptable one (speed: bench/RESULTS.md, `## Router`); "
            "`TIERGATE_ENCODER_PRECISION=fp32` restores float32.",
            "",
        ]
    )


def _failed(verdict: dict[str, bool]) -> str:
    return "no (" + ", ".join(k for k, ok in verdict.items() if not ok) + ")"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("openvino", "nncf"):
        with contextlib.suppress(PackageNotFoundError):
            out.append(f"{name} {version(name)}")
    return ", ".join(out)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True, metavar="DIR")
    parser.add_argument("--data", type=Path, default=DATA, metavar="DIR")
    parser.add_argument(
        "--config", type=Path, default=CONFIG, help="gateway config whose policies count too"
    )
    parser.add_argument("--precisions", type=_names, default=["fp32", "bf16", "int8"])
    parser.add_argument("--lengths", type=_ints, default=[], help="e.g. 96,64 (fp32 at each)")
    parser.add_argument(
        "--int8-calibration",
        type=Path,
        default=None,
        metavar="PATH",
        help="calibrate int8 on these prompts (TIERGATE_INT8_CALIBRATION: a JSONL file or a "
        "routing-data directory); default: the shipped prompts",
    )
    parser.add_argument(
        "--train-only",
        type=Path,
        action="append",
        default=None,
        metavar="PATH",
        help="rows in every training fold, never held out (default: the self-written set)",
    )
    parser.add_argument(
        "--common-sense",
        type=Path,
        default=COMMON_SENSE,
        metavar="FILE",
        help="JSONL of prompt and label simple|demanding (default: the shipped set)",
    )
    parser.add_argument(
        "--write-card",
        action="store_true",
        help="replace the '## Encoder precision' section of the artifact's MODEL_CARD.md",
    )
    parser.add_argument("--no-loso", action="store_true", help="skip the held-out fits")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE")
    parser.add_argument("--markdown", type=Path, default=None, metavar="FILE")
    args = parser.parse_args()
    if args.train_only is None:
        args.train_only = [SELF_WRITTEN]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.int8_calibration is not None:
        from router.settings import CALIBRATION_ENV

        os.environ[CALIBRATION_ENV] = str(calibration_file(args.int8_calibration))
    result = measure(args)
    table = render(result)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, allow_nan=True) + "\n")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.write_card:
        from bench.report import replace_section

        replace_section(args.artifact / "MODEL_CARD.md", "Encoder precision", card(result, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
