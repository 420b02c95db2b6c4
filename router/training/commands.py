"""What each ``tiergate router`` subcommand does (the parser lives in router.training.cli).

Each function takes the parsed arguments, raises RouterError (DataError for bad input) on a problem
the user can fix, and returns an exit code. Output files are written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from router.artifact import Artifact, load_artifact, write_atomic
from router.conversation import Conversation
from router.encoder import Encoder
from router.errors import DataError, RouterError
from router.training.data import Example, load_prompts
from router.training.fit import TrainConfig


def _load_data(paths: list[str]) -> list[Example]:
    from router.training.sources import load_path

    examples = [e for p in paths for e in load_path(p)]
    print(f"loaded {len(examples)} examples from {len(paths)} path(s)", file=sys.stderr)
    return examples


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The training choices `train` and `loso` share, from their common options."""
    return TrainConfig(
        features=_features(args.features),
        label=args.label,
        C=args.C,
        class_balanced=args.class_balanced,
        max_length=args.max_length or None,
        source_multipliers=tuple(
            _source_weight(text, "--source-weight") for text in args.source_weight or ()
        ),
        source_shares=tuple(
            _source_weight(text, "--source-share", below_one=True)
            for text in args.source_share or ()
        ),
        source_effects=args.source_effects,
        pooled_mix=args.pooled_mix,
        calibration_sources=tuple(getattr(args, "calibrate_on", None) or ()),
    )


def _source_weight(text: str, option: str, below_one: bool = False) -> tuple[str, float]:
    """``SOURCE=W`` of --source-weight / --source-share: a source name and a positive number
    (below 1 for a share)."""
    name, sep, value = text.rpartition("=")
    try:
        factor = float(value)
    except ValueError:
        factor = -1.0
    if not sep or not name or not factor > 0 or (below_one and not factor < 1):
        accepted = "a number between 0 and 1" if below_one else "a positive number"
        raise RouterError(
            f"{option} {text!r}; expected SOURCE=W with W {accepted}, "
            "e.g. tiergate/self-written=0.2"
        )
    return name, factor


def _features(text: str) -> tuple[str, ...]:
    from router.features import get_feature

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise RouterError("--features is empty; expected comma-separated feature names")
    for name in names:
        get_feature(name)
    return names


def train(args: argparse.Namespace) -> int:
    """Train on --data and write --out/router.json."""
    from router.encoder import load_encoder
    from router.training.fit import train as train_artifact

    config = _train_config(args)
    examples = _load_data(args.data)
    encoder = load_encoder(args.encoder_path, precision="fp32")  # training reads float32
    out = Path(args.out)
    artifact = train_artifact(
        examples, encoder, config, name=args.name or out.resolve().name, progress=True
    )
    if args.evalset != "none":
        from router.training.evalset import default_evalset_path
        from router.training.evalset_check import record

        evalset = Path(args.evalset) if args.evalset else default_evalset_path()
        doc = record(artifact, examples, encoder, evalset)
        print(json.dumps({"evalset": doc}, indent=1), file=sys.stderr)
    path = artifact.save(out)
    print(f"wrote {path} (C={artifact.training['C']}, {len(examples)} examples)")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Per-source and overall figures of --artifact on --data, and the curve PNG."""
    from router.training.evaluation import result_for
    from router.training.plot import save_curve
    from router.training.report import eval_table

    artifact, encoder = _artifact_and_encoder(args)
    examples = _load_data(args.data)
    scores = _score_cached(artifact, encoder, [e.conversation for e in examples])
    weak = np.array([e.weak for e in examples])
    strong = np.array([e.strong for e in examples])
    sources = np.array([e.source for e in examples])
    results = [
        result_for(s, scores[sources == s], None, weak[sources == s], strong[sources == s])
        for s in sorted(set(sources.tolist()))
    ]
    results.append(result_for("overall", scores, None, weak, strong))
    print(eval_table(results))
    save_curve(args.curve, {artifact.name: scores}, weak, strong, "cost-quality curve")
    print(f"wrote {args.curve}", file=sys.stderr)
    if args.json:
        write_atomic(Path(args.json), json.dumps([r.as_dict() for r in results], indent=1) + "\n")
    return 0


def loso(args: argparse.Namespace) -> int:
    """The model card's protocol; writes loso.md, loso.json and loso_curve.png into --out."""
    from tqdm import tqdm

    from router.encoder import load_encoder
    from router.training.evaluation import (
        NAIVE,
        POOL_PER_SOURCE,
        balanced_index,
        leave_one_source_out,
        pooled,
        summary,
    )
    from router.training.fit import feature_matrix
    from router.training.plot import save_curve
    from router.training.report import eval_table

    config = _train_config(args)
    examples = _load_data(args.data)
    extra = _load_data(args.train_only) if args.train_only else []
    train_only = frozenset(e.source for e in extra)
    if train_only & {e.source for e in examples}:
        raise RouterError(
            f"--train-only sources {sorted(train_only)} also appear in --data; a source is either "
            "evaluated or train-only"
        )
    examples += extra
    encoder = load_encoder(args.encoder_path, precision="fp32")  # training reads float32
    x_ours = feature_matrix(examples, config.features, encoder, True, config.max_length)
    x_naive = feature_matrix(examples, NAIVE.features, encoder, True)  # the encoder's default
    bar = tqdm(
        total=len({e.source for e in examples} - train_only),
        desc="leave-one-source-out",
        unit="source",
    )

    def step(source: str) -> None:
        bar.set_postfix_str(source)
        bar.update(1)

    try:
        results, held = leave_one_source_out(
            examples, x_ours, x_naive, config, on_source=step, train_only=train_only
        )
    finally:
        bar.close()
    # The pools and the curve are of the evaluated (held-out) rows only.
    evaluated = np.array([e.source not in train_only for e in examples])
    examples = [e for e, keep in zip(examples, evaluated, strict=True) if keep]
    held = {k: v[evaluated] for k, v in held.items()}
    pools = [pooled(examples, held, None), pooled(examples, held, POOL_PER_SOURCE)]
    stats = summary(results)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = eval_table([*results, *pools])
    text = (
        f"{table}\n\nMean APGR over {int(stats['sources_with_gap'])} sources where the strong "
        "model is "
        f"better: ours {stats['mean_apgr']:.3f}, naive {stats['mean_apgr_naive']:.3f}; "
        f"lowest source: {stats['min_apgr']:.3f}.\n"
    )
    write_atomic(out / "loso.md", text)
    doc = {
        "sources": [r.as_dict() for r in results],
        "pooled": [p.as_dict() for p in pools],
        "summary": stats,
        "config": {
            "features": list(config.features),
            "label": config.label,
            "C": config.C,
            "class_balanced": config.class_balanced,
            "max_length": config.max_length,
            "source_multipliers": dict(config.source_multipliers),
            "source_shares": dict(config.source_shares),
            "source_effects": config.source_effects,
            "pooled_mix": config.pooled_mix,
            "train_only": sorted(train_only),
        },
    }
    write_atomic(out / "loso.json", json.dumps(doc, indent=1) + "\n")
    index = balanced_index([e.source for e in examples], POOL_PER_SOURCE)
    weak = np.array([e.weak for e in examples])[index]
    strong = np.array([e.strong for e in examples])[index]
    save_curve(
        out / "loso_curve.png",
        {"tiergate router": held["ours"][index], "naive baseline": held["naive"][index]},
        weak,
        strong,
        f"held-out sources, pooled (<= {POOL_PER_SOURCE} per source)",
    )
    print(text)
    return 0


def common_sense(args: argparse.Namespace) -> int:
    """The common-sense set's figures for --artifact at --target-strong-fraction's threshold."""
    from router.training.evalset import default_evalset_path
    from router.training.evalset_check import report

    fraction = args.target_strong_fraction
    if not 0.0 <= fraction <= 1.0:
        raise RouterError(f"--target-strong-fraction {fraction}; expected a number in [0, 1]")
    if args.artifact is None:
        from router.model import default_artifact_dir

        args.artifact = str(default_artifact_dir())
    artifact, encoder = _artifact_and_encoder(args)
    evalset = Path(args.evalset) if args.evalset else default_evalset_path()
    print(report(artifact, encoder, evalset, fraction))
    return 0


def score(args: argparse.Namespace) -> int:
    """One {"p_strong": x} line per --input line, same order, into --output."""
    from tqdm import tqdm

    from router.model import load_router

    if args.batch_size < 1:
        raise RouterError(f"--batch-size {args.batch_size}; expected a positive integer")
    conversations = load_prompts(args.input)
    router = load_router(args.artifact, args.encoder_path)
    output = Path(args.output)
    lines = []
    for start in tqdm(
        range(0, len(conversations), args.batch_size),
        desc="scoring",
        unit="batch",
        disable=len(conversations) <= args.batch_size,
    ):
        batch = conversations[start : start + args.batch_size]
        lines += [json.dumps({"p_strong": float(p)}) for p in router.score_conversations(batch)]
    write_atomic(output, "".join(line + "\n" for line in lines))
    print(f"wrote {len(lines)} scores to {output}", file=sys.stderr)
    return 0


def calibrate(args: argparse.Namespace) -> int:
    """Rebuild --artifact's calibration table from --data's scores; print F's threshold."""
    fraction = args.target_strong_fraction
    if not 0.0 <= fraction <= 1.0:
        raise RouterError(f"--target-strong-fraction {fraction}; expected a number in [0, 1]")
    artifact, encoder = _artifact_and_encoder(args)
    data = Path(args.data)
    if data.is_file():
        conversations = load_prompts(data)
    else:
        conversations = [e.conversation for e in _load_data([args.data])]
    if not conversations:
        raise DataError(data, None, "no prompts; expected JSONL lines with 'prompt' or 'messages'")
    scores = _score_cached(artifact, encoder, conversations)
    artifact.calibrate(scores, f"{data.name} ({len(conversations)} prompts)")
    threshold = artifact.threshold_for_fraction(fraction)
    artifact.training["calibration"].update(
        {"target_strong_fraction": fraction, "threshold": threshold}
    )
    artifact.save(args.artifact)
    print(json.dumps({"target_strong_fraction": fraction, "threshold": threshold}))
    return 0


def fit_routes(args: argparse.Namespace) -> int:
    """Fit the route classifier of --config's routes into --out (a cache hit leaves it as is)."""
    from router.encoder import effective_length, load_encoder
    from router.model import default_artifact_dir
    from router.route_specs import load_background, routes_from_yaml
    from router.routes import content_key, fit_routes, read_cached, save_model

    specs = routes_from_yaml(args.config)
    artifact = load_artifact(args.artifact or default_artifact_dir())
    encoder = load_encoder(args.encoder_path, precision="fp32")  # as the shipped fits
    length = effective_length(artifact.encoder_max_length, encoder.max_seq_length)
    background = load_background()
    key = content_key(specs, encoder, length, background)
    out = Path(args.out)
    model = read_cached(out, key)
    if model is not None:
        print(f"{out / (key + '.json')} is up to date ({len(specs)} routes)")
        return 0
    model = fit_routes(specs, encoder, length, background, key)
    path = save_model(model, out)
    if path is None:
        raise RouterError(f"--out {out}: cannot write the route classifier there")
    print(f"wrote {path} ({len(specs)} routes: {', '.join(model.routes)})")
    print(json.dumps(model.training, sort_keys=True))
    return 0


def _artifact_and_encoder(args: argparse.Namespace) -> tuple[Artifact, Encoder]:
    """The artifact (checked first: it fails fast) and a matching encoder."""
    from router.encoder import load_encoder
    from router.model import Router

    artifact = load_artifact(args.artifact)
    encoder = load_encoder(args.encoder_path, precision="fp32")  # training reads float32
    Router(artifact, encoder)  # refuses an encoder the artifact was not trained with
    return artifact, encoder


def _score_cached(
    artifact: Artifact, encoder: Encoder, conversations: list[Conversation]
) -> np.ndarray:
    """Scores through the embedding cache (evaluation data is often scored again and again)."""
    from router.features import featurize
    from router.training.embeddings import embed_cached

    def encode(texts: Sequence[str]) -> np.ndarray:
        return embed_cached(encoder, texts, max_length=artifact.encoder_max_length, progress=True)

    return artifact.predict(featurize(conversations, artifact.features, encode))
