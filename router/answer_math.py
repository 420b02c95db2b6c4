"""Arithmetic read out of an answer: its final number and the equations it writes down.

A worked answer that writes ``16 - 3 = 13`` or GSM8K's calculator annotation ``<<9*2=18>>`` can be
checked without knowing the question: if the stated result is not what the left side computes,
the reasoning slipped. ``equations`` finds both forms and evaluates the left side with a tiny
arithmetic evaluator (numbers, + - * / and parentheses; never ``eval``). ``final_number`` is the
answer's conclusion: GSM8K's ``####`` line, ``\\boxed{}``, "the answer is ...", else the last
number.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

_NUMBER = r"\$?\s?-?\d[\d,]*(?:\.\d+)?%?"
_OP = r"\s*(?:[-+*/\u00d7\u00f7]|\bx\b)\s*"
# a chain "n op n (op n)* = n" not followed by another operator (so "= 5/2" is not read as "= 5")
_INLINE = re.compile(
    rf"(?<![\w.])(\(?{_NUMBER}\)?(?:{_OP}\(?{_NUMBER}\)?)+)\s*=\s*({_NUMBER})(?!\s*[-+*/\d])"
)
_ANNOTATION = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
_MARKED = (
    re.compile(r"^\s*####\s*(.+)$", re.M),
    re.compile(r"\\boxed\{([^{}]+)\}"),
    re.compile(r"(?:final answer|the answer is|answer:)\s*[:=]?\s*\**\s*(" + _NUMBER + ")", re.I),
)
_ANY_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


@dataclass(frozen=True)
class Equation:
    """One equation found in an answer: its left side, stated result and whether they agree."""

    expression: str
    stated: float
    computed: float
    annotation: bool

    @property
    def holds(self) -> bool:
        """True when the stated result is the computed one, allowing rounding to 2 decimals."""
        return math.isclose(self.computed, self.stated, rel_tol=5e-3, abs_tol=0.011)


def to_number(text: str) -> float | None:
    """A number written the way answers write them: ``$1,200``, ``-3.5``, ``40%``; else None."""
    cleaned = text.strip().replace("$", "").replace(",", "").replace("%", "").strip()
    cleaned = cleaned.rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def evaluate(expression: str) -> float | None:
    """The value of an arithmetic expression (numbers, + - * /, parentheses), or None."""
    text = (
        expression.replace("\u00d7", "*")
        .replace("\u00f7", "/")
        .replace("$", "")
        .replace(",", "")
        .replace("%", "")
    )
    text = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", text)
    if len(text) > 200 or not re.fullmatch(r"[\d.+\-*/() ]+", text):
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return _value(tree.body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _value(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_value(node.left), _value(node.right))
    raise ValueError("not plain arithmetic")


def equations(answer: str) -> list[Equation]:
    """Every checkable equation of ``answer``: calculator annotations and inline "a op b = c"."""
    found: list[Equation] = []
    for match in _ANNOTATION.finditer(answer):
        computed, stated = evaluate(match.group(1)), to_number(match.group(2))
        if computed is not None and stated is not None:
            found.append(Equation(match.group(1), stated, computed, True))
    text = _ANNOTATION.sub(" ", answer)
    for match in _INLINE.finditer(text):
        computed, stated = evaluate(match.group(1)), to_number(match.group(2))
        if computed is not None and stated is not None:
            found.append(Equation(match.group(1).strip(), stated, computed, False))
    return found


def final_number(answer: str) -> tuple[float | None, bool]:
    """(the answer's final number, whether a marker announced it); (None, False) if none."""
    for pattern in _MARKED:
        matches = pattern.findall(answer)
        if matches:
            numbers = _ANY_NUMBER.findall(str(matches[-1]))
            if numbers:
                return to_number(numbers[-1]), True
            return None, True
    numbers = _ANY_NUMBER.findall(answer)
    return (to_number(numbers[-1]), False) if numbers else (None, False)


def numbers_in(text: str) -> set[float]:
    """Every number written in ``text`` (for "is the final answer just copied from the prompt")."""
    values = (to_number(n) for n in _ANY_NUMBER.findall(text))
    return {v for v in values if v is not None}
