"""Feature extractors: what of a conversation the router looks at, and the registry that names them.

A feature is either an *embedding* feature (it picks one text from the conversation; the encoder
embeds it) or a *values* feature (it computes a few cheap numbers). Built-ins are registered with
``register_feature`` exactly as a plug-in would be; an artifact records the names it was trained
with and scoring looks them up here. ``featurize`` gathers the texts of every embedding feature of a
batch and calls the encoder once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from router.conversation import Conversation, full_text, last_user_text, system_text, user_turns
from router.errors import RouterError

EncodeFn = Callable[[Sequence[str]], np.ndarray]
TextFn = Callable[[Conversation], str]
ValuesFn = Callable[[Conversation], Sequence[float]]


@dataclass(frozen=True)
class Feature:
    """One registered extractor; ``columns`` names the values of a values feature."""

    name: str
    kind: Literal["embedding", "values"]
    text: TextFn | None = None
    values: ValuesFn | None = None
    columns: tuple[str, ...] = ()


# The one piece of module-level mutable state the router allows: the plug-in registry.
_REGISTRY: dict[str, Feature] = {}


def register_feature(
    name: str, *, kind: Literal["embedding", "values"], columns: Sequence[str] = ()
) -> Callable[[Callable[[Conversation], object]], Callable[[Conversation], object]]:
    """Register a feature extractor under ``name`` (a decorator).

    ``kind="embedding"``: the function returns the text to embed. ``kind="values"``: it returns one
    float per name in ``columns``. Registering a taken name is an error, so plug-ins cannot silently
    replace what a shipped artifact was trained with.
    """

    def decorate(fn: Callable[[Conversation], object]) -> Callable[[Conversation], object]:
        if name in _REGISTRY:
            raise RouterError(f"feature {name!r} is already registered")
        if kind == "embedding":
            _REGISTRY[name] = Feature(name, kind, text=fn)  # type: ignore[arg-type]
        elif kind == "values" and columns:
            _REGISTRY[name] = Feature(name, kind, values=fn, columns=tuple(columns))  # type: ignore[arg-type]
        else:
            raise RouterError(
                f"feature {name!r}: kind must be 'embedding', or 'values' with columns"
            )
        return fn

    return decorate


def get_feature(name: str) -> Feature:
    """The registered feature ``name``; RouterError listing the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise RouterError(
            f"unknown feature {name!r}; registered features: {', '.join(sorted(_REGISTRY))}"
        ) from None


def feature_names() -> list[str]:
    """Every registered feature name, sorted."""
    return sorted(_REGISTRY)


def featurize(
    conversations: Sequence[Conversation], names: Sequence[str], encode: EncodeFn
) -> np.ndarray:
    """The feature matrix (float64, one row per conversation), columns in the order of ``names``.

    All embedding features of the batch share one ``encode`` call.
    """
    features = [get_feature(n) for n in names]
    texts: list[str] = []
    for feature in features:
        if feature.kind == "embedding" and feature.text is not None:
            texts += [feature.text(c) for c in conversations]
    vectors = encode(texts) if texts else np.zeros((0, 0))
    blocks, offset, n = [], 0, len(conversations)
    for feature in features:
        if feature.kind == "embedding":
            blocks.append(np.asarray(vectors[offset : offset + n], dtype=np.float64))
            offset += n
        elif feature.values is not None:
            rows = [list(feature.values(c)) for c in conversations]
            block = np.asarray(rows, dtype=np.float64).reshape(n, len(feature.columns))
            blocks.append(block)
    return np.hstack(blocks) if blocks else np.zeros((n, 0))


def embedding_texts(conversation: Conversation, names: Sequence[str]) -> list[str]:
    """The texts the embedding features among ``names`` pick from a conversation (cache warm-up)."""
    out = []
    for name in names:
        feature = get_feature(name)
        if feature.kind == "embedding" and feature.text is not None:
            out.append(feature.text(conversation))
    return out


# ---- built-in extractors -------------------------------------------------------------------------


@register_feature("last_user", kind="embedding")
def _last_user(conversation: Conversation) -> str:
    """The request itself; the encoder reads its first word pieces (128 in the shipped router)."""
    return last_user_text(conversation)


@register_feature("tail_1200", kind="embedding")
def _tail_1200(conversation: Conversation) -> str:
    """The last 1,200 characters of the whole conversation: the issue's naive baseline."""
    return full_text(conversation)[-1200:]


@register_feature("system_and_last_user", kind="embedding")
def _system_and_last_user(conversation: Conversation) -> str:
    """The system prompt (which often states the task) followed by the last user turn."""
    system = system_text(conversation)
    user = last_user_text(conversation)
    return f"{system}\n\n{user}" if system else user


_CODE = re.compile(
    r"```|\bdef |\bclass |\breturn\b|\bimport |#include|\bfunction\b|=>|;\s*$|\bpython\b|\bjava\b|"
    r"\bc\+\+|\bsql\b|\bcode\b|\bprogram\b|\bimplement",
    re.I | re.M,
)
_MATH = re.compile(
    r"\$[^$]+\$|\\frac|\\sqrt|\^|\bsolve\b|\bcalculate\b|\bcompute\b|\bequation\b|\bprove\b|"
    r"\bhow many\b|\bhow much\b|\bprobability\b|\bintegral\b|[=+*/]\s*\d",
    re.I,
)
_CHOICES = re.compile(r"^\s*\(?[A-E][.)]\s", re.M)

SHAPE_COLUMNS = (
    "log_chars",
    "log_words",
    "digit_share",
    "code_markers",
    "math_markers",
    "choice_lines",
    "user_turns",
    "has_system",
    "question_marks",
)


@register_feature("shape", kind="values", columns=SHAPE_COLUMNS)
def _shape(conversation: Conversation) -> list[float]:
    """Cheap signals of the kind and size of a task: length, digits, code and maths markers."""
    text = last_user_text(conversation)
    chars = len(text)
    return [
        math.log1p(chars),
        math.log1p(len(text.split())),
        sum(ch.isdigit() for ch in text) / max(chars, 1),
        math.log1p(len(_CODE.findall(text))),
        math.log1p(len(_MATH.findall(text))),
        math.log1p(len(_CHOICES.findall(text))),
        math.log1p(user_turns(conversation)),
        1.0 if system_text(conversation) else 0.0,
        math.log1p(text.count("?")),
    ]


@register_feature("length", kind="values", columns=("log_chars", "log_words"))
def _length(conversation: Conversation) -> list[float]:
    """How long the request is, read in full (the encoder sees only its first word pieces).

    Within a benchmark, longer questions are harder more often than not (MMLU's long professional
    vignettes, multi-step word problems): a signal the truncated embedding misses (MODEL_CARD.md).
    """
    text = last_user_text(conversation)
    return [math.log1p(len(text)), math.log1p(len(text.split()))]
