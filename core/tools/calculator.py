"""`calculator`: arithmetic an agent can trust, without `eval`.

The expression is parsed by Python's `ast` and walked here: numbers, `+ - * / // % **`,
unary signs, parentheses, a few constants (`pi`, `e`, `tau`) and functions from
`math`. Nothing else exists: no names, attributes, subscripts or calls of anything
not listed. Sizes are bounded before they are computed: a power or a product whose
result would pass `MAX_BITS` is refused (so `9**9**9` answers at once), as is a
factorial past 1,000 and an expression past 500 characters.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from podium.core.errors import ToolError
from podium.core.tools.base import ToolDef

MAX_CHARS = 500
MAX_BITS = 10_000  # about 3,000 decimal digits
MAX_FACTORIAL = 1_000

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(n: Number) -> int:
    if not float(n).is_integer() or n < 0:
        raise ToolError("factorial takes a whole number of 0 or more")
    if n > MAX_FACTORIAL:
        raise ToolError(f"factorial of {n:g} is too large (the limit is {MAX_FACTORIAL})")
    return math.factorial(int(n))


def _round(x: Number, digits: int | None = None) -> Number:
    if digits is None:
        return round(x)
    if not isinstance(digits, int) or abs(digits) > 100:
        raise ToolError("round takes a whole number of digits between -100 and 100")
    return round(x, digits)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "log10": math.log10,
    "log2": math.log2, "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "asin": math.asin, "acos": math.acos, "atan": math.atan, "atan2": math.atan2,
    "hypot": math.hypot, "floor": math.floor, "ceil": math.ceil, "abs": abs,
    "round": _round, "min": min, "max": max, "factorial": _factorial,
}


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression, or a `ToolError` saying what is wrong."""
    text = expression.strip()
    if not text:
        raise ToolError("empty expression", "write arithmetic such as 17 * 23")
    if len(text) > MAX_CHARS:
        raise ToolError(f"the expression is over {MAX_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
        return _value(tree.body)
    except SyntaxError:
        raise ToolError(f"not an arithmetic expression: {text!r}",
                        "use numbers, + - * / // % ** and parentheses") from None
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except (RecursionError, MemoryError):
        raise ToolError("the expression is nested too deeply") from None
    except (ValueError, TypeError) as e:  # math domain errors, wrong arguments
        raise ToolError(f"cannot compute {text!r}: {e}") from None


def _value(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        assert isinstance(node.value, int | float)
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        inner = _value(node.operand)
        return -inner if isinstance(node.op, ast.USub) else +inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        _check_size(node.op, left, right)
        result: Number = _BINARY[type(node.op)](left, right)
        if isinstance(result, complex):  # (-8) ** 0.5
            raise ToolError("the result is not a real number")
        return result
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ToolError("'^' is not a power here", "write powers as 2 ** 10")
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in _FUNCTIONS and not node.keywords:
        args = [_value(a) for a in node.args]
        return _FUNCTIONS[node.func.id](*args)
    if isinstance(node, ast.Name) or isinstance(node, ast.Call) \
            and isinstance(node.func, ast.Name):
        name = node.id if isinstance(node, ast.Name) else ast.unparse(node.func)
        raise ToolError(f"unknown name '{name}'", "functions: " + ", ".join(_FUNCTIONS)
                        + "; constants: " + ", ".join(_CONSTANTS))
    raise ToolError(f"'{ast.unparse(node)}' is not arithmetic",
                    "use numbers, + - * / // % ** and parentheses")


def _bits(x: Number) -> float:
    return math.log2(abs(x)) if x not in (0, 1, -1) else 0.0


def _check_size(op: ast.operator, left: Number, right: Number) -> None:
    """Refuse, before computing it, a result over `MAX_BITS` (floats overflow by
    themselves; exact integers would grow until memory runs out)."""
    if isinstance(op, ast.Pow) and isinstance(left, int) and isinstance(right, int):
        if right > 0 and _bits(left) * right > MAX_BITS:
            raise ToolError(f"{left} ** {right} is too large to compute exactly",
                            "use a float base (e.g. 9.0 ** 99) for an approximate value")
        if right < 0 and _bits(left) * -right > MAX_BITS:
            raise ToolError(f"{left} ** {right} is too small to compute")
    if isinstance(op, ast.Mult) and isinstance(left, int) and isinstance(right, int) \
            and _bits(left) + _bits(right) > MAX_BITS:
        raise ToolError("the product is too large to compute exactly")


def format_number(value: Number) -> str:
    """A result as text: whole numbers without a decimal point, floats to 15 digits."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}"
    return str(value)


def calculator_tool(*, name: str = "calculator") -> ToolDef:
    """A tool that evaluates arithmetic (see the module docstring for what it accepts)."""

    def run(arguments: dict[str, Any]) -> str:
        return format_number(evaluate(str(arguments["expression"])))

    return ToolDef(
        name=name,
        description=("Evaluate arithmetic exactly: numbers, + - * / // % ** and "
                     "parentheses; constants pi, e, tau; functions "
                     + ", ".join(_FUNCTIONS) + "."),
        parameters={"type": "object",
                    "properties": {"expression": {"type": "string", "minLength": 1,
                                                  "description": "e.g. (17 * 23) / 4"}},
                    "required": ["expression"], "additionalProperties": False},
        run=run,
    )
