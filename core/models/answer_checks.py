"""Checks a program can make of a model's answer, for `route = "cascade"`.

A cascade answers locally first and escalates when the local answer looks wrong. Some
failures need no model to see: an empty answer, JSON that does not parse, arithmetic the
answer itself states and gets wrong ("7 - 3 = 2"), a bare sum in the ask whose value the
answer never gives, and the loop a small model falls into when it says a sentence again
and again. Each check returns what is wrong, in words for the decision's reasons, or None.

Each check errs towards passing: a false alarm costs a remote call, so times, ranges,
powers, percentages, remainders, code and repetition the ask asked for are left alone.
On the embedded model's answers to `bench/calibration`, every answer these flag was
wrong: 72 of 734, 37 in the train half and 35 in the held-out half (which was in view
while the checks were written, so count it as seen).
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections import Counter
from typing import Any

_NUM = r"-?\$?\d+(?:,\d{3})*(?:\.\d+)?"
# A stretch of arithmetic: digits, operators, parentheses, spaces and '='. Found in one
# linear pass and then parsed, so no pattern can backtrack on a long run of terms.
_STRETCH = re.compile(r"(?:-(?=[\d(])|[\d$(])[\d.,$()+\-*/x×÷= \t]*")
_CLAUSE = re.compile(r"[.,;]\s+")  # "2 + 2 = 4. 3 + 3 = 7": two equations, one stretch
_NUMBER = re.compile(_NUM)
_WORD = re.compile(r"[A-Za-z]+")
_RANGE = re.compile(r"\d-\d")  # "pages 10-12", "ages 3-5": a range, not a subtraction
# Just before a stretch: it is part of a power, a root, a time, a fraction or a name.
_NOT_BEFORE = frozenset("^√:/*.%_") | frozenset("abcdefghijklmnopqrstuvwxyz"
                                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# Just after one: a percentage, a time, a remainder, a power.
_NOT_AFTER = re.compile(r"\s*(?:%|:\d|\^|remainder|rem\b|r\s*\d|with\s+a\s+remainder)", re.I)
_DASHES = str.maketrans({"\u2212": "-", "\u2013": "-"})
_NUMBER_WORDS = {w: float(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_FENCED = re.compile(r"(```|~~~).*?(?:\1|$)", re.S)
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
        return false_arithmetic(text)  # structured data repeats its keys by design
    return false_arithmetic(text) or missed_sum(ask, text) or \
        repeated_line(ask, text, finish_reason)


def false_arithmetic(text: str) -> str | None:
    """The first equation in `text` whose two sides differ, as 'says A = B'. In a chain
    (A = B = C) each side that is a plain number is checked against the one before it."""
    text = text.translate(_DASHES)
    for stretch, after in _stretches(text):
        clauses = _CLAUSE.split(stretch)
        for c, clause in enumerate(clauses):
            sides = clause.split("=")
            for i, (left, right) in enumerate(zip(sides, sides[1:], strict=False)):
                shown = right.strip().rstrip(".,")
                if c == len(clauses) - 1 and i == len(sides) - 2 and _NOT_AFTER.match(after):
                    continue  # "1/2 = 50%", "19 / 5 = 3 remainder 4", "9:15 + 45 = 10:00"
                value, stated = _sum_value(left), _number(shown)
                if value is not None and stated is not None and \
                        not _close(value, stated, shown):
                    return f"says {' '.join(left.split())} = {shown}, which is false"
    return None


def missed_sum(ask: str, text: str) -> str | None:
    """When the ask is a bare sum ("What is 56 - 22?"), whether the answer gives its value."""
    if len(ask) > 120:
        return None
    ask, text = ask.translate(_DASHES), text.translate(_DASHES)
    sums = [s for s, after in _stretches(ask)
            if "=" not in s and not _NOT_AFTER.match(after) and _sum_value(s) is not None]
    if len(sums) != 1:
        return None
    rest = ask.replace(sums[0], " ")
    if any(w.lower() not in _ASK_WORDS for w in _WORD.findall(rest)):
        return None  # a word problem or a sentence, not a bare sum
    value = _sum_value(sums[0])
    assert value is not None
    given = [(n, shown) for shown in _NUMBER.findall(text)
             if (n := _number(shown)) is not None]
    given += [(n, w) for w, n in _NUMBER_WORDS.items() if re.search(rf"\b{w}\b", text, re.I)]
    if any(_close(value, n, shown) for n, shown in given):
        return None
    if "remainder" in text.lower() and any(n == math.floor(value) for n, _ in given):
        return None  # 10 / 3 = "3 remainder 1"
    return f"does not give {' '.join(sums[0].strip().rstrip('.,').split())} = {_show(value)}"


def repeated_line(ask: str, text: str, finish_reason: str | None = None) -> str | None:
    """The loop a small model falls into: a sentence (12 characters or more, with words)
    said three times, or twice in a row in an answer the token limit cut off (a loop
    runs until it is stopped). Code, headings, table rules and repetition the ask asked
    for are left out."""
    lowered = ask.lower()
    if "repeat" in lowered or "times" in lowered:
        return None
    prose = _FENCED.sub(" ", text)
    parts = [p.strip() for p in _SENTENCE.split(prose)
             if p.strip() and not p.startswith(("    ", "\t"))]

    def counts(p: str) -> bool:
        return len(p) >= 12 and len(_WORD.findall(p)) >= 3 and not _heading(p) and \
            p.strip("*#_ ") not in ask

    seen = Counter(p for p in parts if counts(p))
    in_a_row = next((a for a, b in zip(parts, parts[1:], strict=False) if a == b and counts(a)),
                    None) if finish_reason == "length" else None
    part = in_a_row or next((p for p, n in seen.most_common(1) if n >= 3), None)
    if part is None:
        return None
    return f"repeats itself ('{part[:40]}' {seen[part]} times)"


def _heading(line: str) -> bool:
    """A markdown heading or a label line ("**Advantages:**"), which lists repeat."""
    return line.startswith("#") or line.strip("*_ ").endswith(":")


def evaluate(expression: str) -> float | None:
    """The value of a plain arithmetic expression (numbers, + - * / x × ÷, parentheses),
    or None if it is not one or divides by zero. Parsed, never `eval`ed."""
    tree = _parse(expression)
    try:
        return None if tree is None else _value(tree)
    except (ZeroDivisionError, ValueError, OverflowError, RecursionError):
        return None


def _stretches(text: str) -> list[tuple[str, str]]:
    """Each arithmetic stretch of `text` that stands on its own, with the text after it."""
    out = []
    for m in _STRETCH.finditer(text):
        if m.start() and text[m.start() - 1] in _NOT_BEFORE:
            continue
        before = m.start() - 1
        while before >= 0 and text[before] in " \t":
            before -= 1
        if before >= 0 and text[before] in "-+*/=×÷":
            continue  # the tail of a longer expression ("- 5 + 3")
        if _RANGE.search(m.group()):
            continue
        out.append((m.group(), text[m.end():m.end() + 24]))
    return out


def _sum_value(expression: str) -> float | None:
    """`evaluate`, for an expression with at least one operator between numbers (a sum,
    not a lone number or a negative one)."""
    tree = _parse(expression)
    while isinstance(tree, ast.UnaryOp):
        tree = tree.operand
    return evaluate(expression) if isinstance(tree, ast.BinOp) else None


def _parse(expression: str) -> ast.expr | None:
    source = expression.replace("$", "").replace(",", "").strip().rstrip(".")
    source = re.sub(r"[x×]", "*", source).replace("÷", "/")
    if not source or len(source) > 200 or "**" in source:
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
