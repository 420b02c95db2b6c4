"""What the verifier looks at in a (request, answer) pair, and the registry that names it.

Like the router's features (router/features.py) but on two inputs: the conversation that was asked
and the cheaper tier's answer text. Three kinds: *embedding* (a text to embed: the answer, its
tail, the request), *similarity* (two texts; the cosine of their embeddings, from the same encoder
call), and *values* (cheap numbers read from the texts). Built-ins are registered with
``register_answer_feature`` exactly as a plug-in would be; an artifact records the names it was
trained with. ``featurize_answers`` gathers every text of a batch and calls the encoder once.

The built-in values are chosen to mean the same on any traffic, not only on GSM8K: arithmetic that
does not add up, a missing or non-integer final number, hedging, refusals, self-corrections, loops,
broken code, an answer cut off mid-sentence, its length against the request's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from router.answer_math import equations, final_number, numbers_in
from router.code_blocks import first_broken_block
from router.conversation import Conversation, last_user_text
from router.errors import RouterError
from router.repetition import repetition_ratio

EncodeFn = Callable[[Sequence[str]], np.ndarray]
Kind = Literal["embedding", "similarity", "values"]
TextFn = Callable[[Conversation, str], str]
PairFn = Callable[[Conversation, str], tuple[str, str]]
ValuesFn = Callable[[Conversation, str], Sequence[float]]
ExtractorT = TypeVar("ExtractorT", bound=Callable[[Conversation, str], object])
TAIL_CHARS = 1000


@dataclass(frozen=True)
class AnswerFeature:
    """One registered extractor; ``columns`` names the values of a values feature."""

    name: str
    kind: Kind
    text: TextFn | None = None
    pair: PairFn | None = None
    values: ValuesFn | None = None
    columns: tuple[str, ...] = ()

    @property
    def width(self) -> int | None:
        """Columns this feature adds (None for an embedding: the encoder's dimension)."""
        return {"embedding": None, "similarity": 1, "values": len(self.columns)}[self.kind]


# The one piece of module-level mutable state allowed: the plug-in registry (as router.features).
_REGISTRY: dict[str, AnswerFeature] = {}


def register_answer_feature(
    name: str, *, kind: Kind, columns: Sequence[str] = ()
) -> Callable[[ExtractorT], ExtractorT]:
    """Register an extractor of (conversation, answer) under ``name`` (a decorator).

    ``embedding``: returns the text to embed; ``similarity``: a pair of texts; ``values``: one float
    per name in ``columns``. A taken name is refused, so a plug-in cannot replace what a shipped
    artifact was trained with.
    """

    def decorate(fn: ExtractorT) -> ExtractorT:
        if name in _REGISTRY:
            raise RouterError(f"answer feature {name!r} is already registered")
        if kind == "embedding":
            feature = AnswerFeature(name, kind, text=fn)  # type: ignore[arg-type]
        elif kind == "similarity":
            feature = AnswerFeature(name, kind, pair=fn)  # type: ignore[arg-type]
        elif kind == "values" and columns:
            feature = AnswerFeature(name, kind, values=fn, columns=tuple(columns))  # type: ignore[arg-type]
        else:
            raise RouterError(
                f"answer feature {name!r}: kind must be 'embedding', 'similarity', "
                "or 'values' with columns"
            )
        _REGISTRY[name] = feature
        return fn

    return decorate


def get_answer_feature(name: str) -> AnswerFeature:
    """The registered answer feature ``name``; RouterError listing the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise RouterError(
            f"unknown answer feature {name!r}; registered: {', '.join(sorted(_REGISTRY))}"
        ) from None


def answer_feature_names() -> list[str]:
    """Every registered answer feature name, sorted."""
    return sorted(_REGISTRY)


def column_names(names: Sequence[str], dimension: int) -> list[str]:
    """The name of every column ``featurize_answers`` produces (for model cards and weights)."""
    out: list[str] = []
    for feature in (get_answer_feature(n) for n in names):
        if feature.kind == "embedding":
            out += [f"{feature.name}[{i}]" for i in range(dimension)]
        elif feature.kind == "similarity":
            out.append(feature.name)
        else:
            out += [f"{feature.name}.{c}" for c in feature.columns]
    return out


def featurize_answers(
    conversations: Sequence[Conversation],
    answers: Sequence[str],
    names: Sequence[str],
    encode: EncodeFn,
) -> np.ndarray:
    """The feature matrix (float64, one row per pair), columns in the order of ``names``.

    Every text that any embedding or similarity feature needs goes through one ``encode`` call.
    """
    if len(conversations) != len(answers):
        raise RouterError(f"{len(conversations)} requests but {len(answers)} answers")
    features = [get_answer_feature(n) for n in names]
    n = len(answers)
    texts: list[str] = []
    for feature in features:
        if feature.kind == "embedding" and feature.text is not None:
            texts += [feature.text(c, a) for c, a in zip(conversations, answers, strict=True)]
        elif feature.kind == "similarity" and feature.pair is not None:
            pairs = [feature.pair(c, a) for c, a in zip(conversations, answers, strict=True)]
            texts += [p[0] for p in pairs] + [p[1] for p in pairs]
    vectors = encode(texts) if texts else np.zeros((0, 0))
    blocks, offset = [], 0
    for feature in features:
        if feature.kind == "embedding":
            blocks.append(np.asarray(vectors[offset : offset + n], dtype=np.float64))
            offset += n
        elif feature.kind == "similarity":
            left = np.asarray(vectors[offset : offset + n], dtype=np.float64)
            right = np.asarray(vectors[offset + n : offset + 2 * n], dtype=np.float64)
            blocks.append(np.sum(left * right, axis=1, keepdims=True))
            offset += 2 * n
        elif feature.values is not None:
            rows = [list(feature.values(c, a)) for c, a in zip(conversations, answers, strict=True)]
            blocks.append(np.asarray(rows, dtype=np.float64).reshape(n, len(feature.columns)))
    return np.hstack(blocks) if blocks else np.zeros((n, 0))


# ---- built-in extractors -------------------------------------------------------------------------


@register_answer_feature("answer", kind="embedding")
def _answer(conversation: Conversation, answer: str) -> str:
    """The answer's opening (the encoder reads its first word pieces): what kind of answer it is."""
    return answer


@register_answer_feature("answer_prose", kind="embedding")
def _answer_prose(conversation: Conversation, answer: str) -> str:
    """The answer's opening unless it is a worked calculation (then the empty text, one constant
    vector): what an answer embedding learns about prose must not move arithmetic answers, which
    ``answer_math`` and ``worked_shape`` judge (held-out GSM8K APGR 0.74 against 0.71)."""
    return "" if is_worked(conversation, answer) else answer


@register_answer_feature("answer_tail", kind="embedding")
def _answer_tail(conversation: Conversation, answer: str) -> str:
    """The answer's last 1,000 characters: where a conclusion, or a loop, sits."""
    return answer[-TAIL_CHARS:]


@register_answer_feature("request", kind="embedding")
def _request(conversation: Conversation, answer: str) -> str:
    """The last user turn, as the router embeds it: how hard the request is."""
    return last_user_text(conversation)


@register_answer_feature("request_answer_cosine", kind="similarity")
def _request_answer(conversation: Conversation, answer: str) -> tuple[str, str]:
    """Cosine of the request's and the answer's embeddings: does the answer stay on topic."""
    return last_user_text(conversation), answer


_HEDGES = re.compile(
    r"\b(?:i think|i believe|i'm not sure|i am not sure|not sure|maybe|perhaps|possibly|probably|"
    r"might be|could be|approximately|roughly|about \d|assum\w+|estimate\w*|it seems|unclear|"
    r"however|but since|round(?:ed|ing)?(?: up| down)?)\b",
    re.I,
)
_REFUSALS = re.compile(
    r"\b(?:i'm sorry|i am sorry|i apologi[sz]e|i can(?:'|no)t|i cannot|i'm unable|i am unable|"
    r"as an ai|as a language model|i don't have (?:access|the ability|personal)|i do not have)\b",
    re.I,
)
_CORRECTIONS = re.compile(
    r"\b(?:wait|actually|oops|correction|mistake|let me re\w*|re-?calculat\w*|on second thought|"
    r"i made an error|that's not right|this is incorrect|doesn't make sense)\b",
    re.I,
)
_SENTENCE_END = re.compile(r"[.!?)\]}\"'`*:|>]\s*$|\d\s*$|```\s*$")

MATH_COLUMNS = (
    "equations",
    "wrong_equations",
    "wrong_share",
    "wrong_annotations",
    "final_marker",
    "no_final_number",
    "final_not_integer",
    "final_negative",
    "final_in_request",
)


@register_answer_feature("answer_math", kind="values", columns=MATH_COLUMNS)
def _answer_math(conversation: Conversation, answer: str) -> list[float]:
    """Arithmetic that does not add up, and what the final number looks like.

    Zero everywhere for an answer to a request without numbers, so prose is not judged by rules
    meant for worked calculations.
    """
    request = last_user_text(conversation)
    asked = numbers_in(request)
    if not asked:
        return [0.0] * len(MATH_COLUMNS)
    found = equations(answer)
    wrong = [e for e in found if not e.holds]
    final, marked = final_number(answer)
    return [
        math.log1p(len(found)),
        math.log1p(len(wrong)),
        len(wrong) / len(found) if found else 0.0,
        float(sum(e.annotation for e in wrong)),
        1.0 if marked else 0.0,
        1.0 if final is None else 0.0,
        1.0 if final is not None and abs(final - round(final)) > 1e-9 else 0.0,
        1.0 if final is not None and final < 0 else 0.0,
        1.0 if final is not None and final in asked else 0.0,
    ]


SHAPE_COLUMNS = (
    "log_chars",
    "log_words",
    "log_length_ratio",
    "log_lines",
    "list_share",
    "code_blocks",
    "unfinished",
    "repetition",
    "code_broken",
    "non_ascii_gap",
)
_LIST_LINE = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+", re.M)


@register_answer_feature("answer_shape", kind="values", columns=SHAPE_COLUMNS)
def _answer_shape(conversation: Conversation, answer: str) -> list[float]:
    """Length (alone and against the request's), structure, an unfinished ending, loops, code that
    does not parse, and an answer in another script than the request."""
    request = last_user_text(conversation)
    stripped = answer.strip()
    lines = [line for line in stripped.split("\n") if line.strip()]
    fences = stripped.count("```")
    return [
        math.log1p(len(stripped)),
        math.log1p(len(stripped.split())),
        math.log1p(len(stripped)) - math.log1p(len(request)),
        math.log1p(len(lines)),
        len(_LIST_LINE.findall(stripped)) / max(len(lines), 1),
        math.log1p(fences // 2),
        0.0 if not stripped or (_SENTENCE_END.search(stripped) and fences % 2 == 0) else 1.0,
        repetition_ratio(stripped)[0],
        1.0 if first_broken_block(stripped) else 0.0,
        _non_ascii(stripped) - _non_ascii(request),
    ]


def is_worked(conversation: Conversation, answer: str) -> bool:
    """A worked calculation: the request has numbers and the answer writes an equation down or
    announces a final number (90% of GSM8K's answers, under 1% of AlpacaEval's)."""
    if not numbers_in(last_user_text(conversation)):
        return False
    return bool(equations(answer)) or final_number(answer)[1]


def _non_ascii(text: str) -> float:
    return sum(ord(ch) > 127 for ch in text) / max(len(text), 1)


TONE_COLUMNS = ("hedges", "refusal", "corrections", "questions")


@register_answer_feature("answer_tone", kind="values", columns=TONE_COLUMNS)
def _answer_tone(conversation: Conversation, answer: str) -> list[float]:
    """Hedging, refusing, correcting itself, asking back: an answer unsure of itself."""
    words = max(len(answer.split()), 1)
    return [
        math.log1p(1000.0 * len(_HEDGES.findall(answer)) / words),
        1.0 if _REFUSALS.search(answer[:300]) else 0.0,
        math.log1p(len(_CORRECTIONS.findall(answer))),
        math.log1p(answer.count("?")),
    ]


WORKED_COLUMNS = ("worked", *(f"worked_{c}" for c in (*SHAPE_COLUMNS, *TONE_COLUMNS)))


@register_answer_feature("worked_shape", kind="values", columns=WORKED_COLUMNS)
def _worked_shape(conversation: Conversation, answer: str) -> list[float]:
    """For worked calculations only (zero otherwise): an indicator, then ``answer_shape`` and
    ``answer_tone`` again, so that length, hedging or an unfinished ending get their own slopes
    where they mean something else than in prose (a linear model cannot tell the regimes apart)."""
    if not is_worked(conversation, answer):
        return [0.0] * len(WORKED_COLUMNS)
    return [1.0, *_answer_shape(conversation, answer), *_answer_tone(conversation, answer)]
