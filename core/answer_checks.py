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
_OP = r"[-+*/x×÷]"
# An expression of two or more numbers joined by operators (parentheses allowed).
_EXPR = rf"\(?\s*{_NUM}\s*\)?(?:\s*{_OP}\s*\(?\s*{_NUM}\s*\)?)+"
_EQUATION = re.compile(rf"(?<![\w.])({_EXPR})\s*=\s*({_NUM})(?![\d.]*\s*{_OP}\s*\d)")
_ASKED_EXPR = re.compile(rf"(?<![\w.])({_EXPR})(?!\w|\.\d)")
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
    """The first equation in `text` whose two sides differ, as 'says A = B'."""
    for left, right in _EQUATION.findall(text):
        value = evaluate(left)
        stated = _number(right)
        if value is not None and stated is not None and not _close(value, stated, right):
            return f"says {' '.join(left.split())} = {right}, which is false"
    return None


def missed_sum(ask: str, text: str) -> str | None:
    """When the ask is a bare sum ("What is 56 - 22?"), whether the answer gives its value."""
    found = _ASKED_EXPR.findall(ask)
    if len(found) != 1 or len(ask) > 120:
        return None
    rest = _ASKED_EXPR.sub(" ", ask)
    if any(w.lower() not in _ASK_WORDS for w in _WORD.findall(rest)):
        return None  # a word problem or a sentence, not a bare sum
    value = evaluate(found[0])
    if value is None:
        return None
    numbers = [n for n in (_number(m) for m in _NUMBER.findall(text)) if n is not None]
    if any(abs(n - value) <= max(1e-6, abs(value) * 1e-3) for n in numbers):
        return None
    return f"does not give {' '.join(found[0].split())} = {_show(value)}"


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
    source = expression.replace("$", "").replace(",", "").strip()
    source = re.sub(r"[x×]", "*", source).replace("÷", "/")
    try:
        tree = ast.parse(source, mode="eval")
        return _value(tree.body)
    except (SyntaxError, ZeroDivisionError, ValueError, RecursionError):
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
