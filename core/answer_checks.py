"""Checks a program can make of a model's answer, for `route = "cascade"`.

A cascade answers locally first and escalates when the local answer looks wrong. Some
failures need no model to see: an empty answer, JSON that does not parse, arithmetic the
answer itself states and gets wrong ("7 - 3 = 2"), a bare sum in the ask whose value the
answer never gives, and the loop a small model falls into when it repeats a line. Each
check returns what is wrong, in words for the decision's reasons, or None.

On the embedded model's answers to `bench/calibration`, every answer these flagged
(other than by JSON) was wrong: false arithmetic 47 of 47, a missed sum 37 of 37, a
repeated sentence 8 of 8.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections import Counter
from typing import Any

_NUM = r"-?\$?\d+(?:,\d{3})*(?:\.\d+)?"
# A stretch of arithmetic: digits, operators, parentheses, spaces and '='. Found in one
# linear pass and then parsed, so no pattern can backtrack on a long run of terms.
_STRETCH = re.compile(r"[\d$(][\d.,$()+\-*/x×÷= \t]*")
_NUMBER = re.compile(_NUM)
_WORD = re.compile(r"[A-Za-z]+")
_FENCED = re.compile(r"```.*?(?:```|$)", re.S)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n")
# An ask that is only a sum: a few words around one expression.
_ASK_WORDS = {"what", "is", "s", "calculate", "compute", "evaluate", "work", "out", "the",
              "value", "of", "result", "answer", "equals", "how", "much", "please", "solve",
              "find", "give", "me", "x", "times", "tell"}
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}


def problem(ask: str, text: str, finish_reason: str | None,
            schema: dict[str, Any] | None = None) -> str | None:
    """What is wrong with `text` as the answer to `ask`, or None if no check fails."""
    if not text.strip():
        return "was empty"
    if schema is not None:
        if finish_reason == "length":
            return "was cut off"
        try:
            json.loads(text)
        except json.JSONDecodeError:
            return "was not valid JSON"
    return false_arithmetic(text) or missed_sum(ask, text) or repeated_line(text)


def false_arithmetic(text: str) -> str | None:
    """The first equation in `text` whose two sides differ, as 'says A = B'. In a chain
    (A = B = C) each side that is a plain number is checked against the one before it."""
    for stretch in _STRETCH.findall(text):
        sides = stretch.split("=")
        for left, right in zip(sides, sides[1:], strict=False):
            shown = right.strip().rstrip(".,")
            value, stated = _sum_value(left), _number(shown)
            if value is not None and stated is not None and not _close(value, stated, shown):
                return f"says {' '.join(left.split())} = {shown}, which is false"
    return None


def missed_sum(ask: str, text: str) -> str | None:
    """When the ask is a bare sum ("What is 56 - 22?"), whether the answer gives its value."""
    if len(ask) > 120:
        return None
    sums = [s for s in _STRETCH.findall(ask) if "=" not in s and _sum_value(s) is not None]
    if len(sums) != 1:
        return None
    rest = ask.replace(sums[0], " ")
    if any(w.lower() not in _ASK_WORDS for w in _WORD.findall(rest)):
        return None  # a word problem or a sentence, not a bare sum
    value = _sum_value(sums[0])
    assert value is not None
    numbers = [n for n in (_number(m) for m in _NUMBER.findall(text)) if n is not None]
    if any(abs(n - value) <= max(1e-6, abs(value) * 1e-3) for n in numbers):
        return None
    return f"does not give {' '.join(sums[0].strip().rstrip('.,').split())} = {_show(value)}"


def repeated_line(text: str) -> str | None:
    """A sentence or line (12 characters or more) said twice, outside code blocks: the
    loop a small model falls into. Code repeats lines legitimately, so it is left out."""
    prose = _FENCED.sub(" ", text)
    parts = Counter(p.strip() for p in _SENTENCE.split(prose) if len(p.strip()) >= 12)
    part, times = parts.most_common(1)[0] if parts else ("", 0)
    if times >= 2:
        return f"repeats itself ('{part[:40]}' {times} times)"
    return None


def evaluate(expression: str) -> float | None:
    """The value of a plain arithmetic expression (numbers, + - * / x × ÷, parentheses),
    or None if it is not one or divides by zero. Parsed, never `eval`ed."""
    tree = _parse(expression)
    try:
        return None if tree is None else _value(tree)
    except (ZeroDivisionError, ValueError, RecursionError):
        return None


def _sum_value(expression: str) -> float | None:
    """`evaluate`, for an expression with at least one operator between numbers (a sum,
    not a lone number or a negative one)."""
    tree = _parse(expression)
    return evaluate(expression) if isinstance(tree, ast.BinOp) else None


def _parse(expression: str) -> ast.expr | None:
    source = expression.replace("$", "").replace(",", "").strip().rstrip(".")
    source = re.sub(r"[x×]", "*", source).replace("÷", "/")
    if not source or len(source) > 200:
        return None
    try:
        return ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, RecursionError):
        return None


def _value(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return float(_OPS[type(node.op)](_value(node.left), _value(node.right)))
    raise ValueError("not plain arithmetic")


def _number(text: str) -> float | None:
    try:
        return float(text.replace("$", "").replace(",", ""))
    except ValueError:
        return None


def _close(value: float, stated: float, shown: str) -> bool:
    """Equal, allowing for the rounding the stated number's decimals imply."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(value - stated) <= 0.5 * 10 ** -decimals + 1e-9 or \
        abs(value - stated) <= abs(value) * 1e-3


def _show(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"
