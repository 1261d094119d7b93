"""Jinja2 in a sandbox: templates render text, expressions give values.

A step's text can never run code: the sandbox blocks attribute tricks, and the
only names a template sees are `inputs`, `steps`, and inside a `map` `item` and
`index`. Compiled templates are cached, since the same template renders once per
step per run and compiling costs far more than rendering.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from podium.core.errors import StepError
from podium.core.recipe.watchdog import Overrun, watchdog

GLOBAL_NAMES = frozenset({"inputs", "steps", "item", "index"})


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


def _truncate_words(value: Any, count: int = 300) -> str:
    words = str(value).split()
    return " ".join(words[:count]) + (" ..." if len(words) > count else "")


# What one template may make, and how long it may take. Prompts are far smaller; the
# caps only stop a template (or a hostile input it renders) from eating the machine.
MAX_TEXT = 4_000_000  # characters a template may build (about a million tokens, more
# than any model reads), and of its output
MAX_SOURCE = 200_000  # characters of one template's source
RENDER_LIMIT_S = 1.0  # rendering runs on the event loop: other steps wait this long at most
MAX_INT_BITS = 100_000  # about 30,000 digits


class LimitError(Exception):
    """A template went past what one render may make or take."""


def _check_size(n: int, what: str) -> None:
    if n > MAX_TEXT:
        raise LimitError(f"{what} would be {n:,} characters, over the limit of {MAX_TEXT:,}")


def _bounded_concat(parts: Iterable[Any]) -> str:
    """A template's output, joined while counting, so a loop cannot build a giant text."""
    out: list[str] = []
    size = 0
    for part in parts:
        text = str(part)
        size += len(text)
        _check_size(size, "the rendered text")
        out.append(text)
    return "".join(out)


_DIGITS = re.compile(r"\d{7,}")  # a width of a million or more in a format spec


def _bounded_call(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    """`func` (a filter, or a string method) refusing arguments that would make a text
    over the limit before it is made, and checking what it made."""

    @functools.wraps(func)  # keeps Jinja's pass_context / pass_environment marks
    def call(*args: Any, **kwargs: Any) -> Any:
        for a in (*args, *kwargs.values()):
            if isinstance(a, int) and not isinstance(a, bool) and a > MAX_TEXT:
                raise LimitError(f"{name}({a:,}) would make a text over the limit of "
                                 f"{MAX_TEXT:,} characters")
            if isinstance(a, str) and "format" in name and _DIGITS.search(a):
                raise LimitError(f"{name}: a field width of a million characters or more")
        if name == "join":
            items = next((a for a in args if isinstance(a, list | tuple)), None)
            glue = next((a for a in args if isinstance(a, str)), "")
            if items is not None:
                _check_size(sum(len(str(x)) for x in items) + len(glue) * len(items), name)
        if name in ("replace", "str.replace"):
            text = [a for a in args if isinstance(a, str)]
            if len(text) >= 3 and text[1]:
                _check_size(len(text[0]) + text[0].count(text[1]) * len(text[2]), name)
        result = func(*args, **kwargs)
        if isinstance(result, str):
            _check_size(len(result), name)
        return result

    return call


# str methods that can make a long text from short arguments.
_TEXT_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "format",
                           "join", "replace", "format_map"})


def _check_str_method(text: str, name: str, args: tuple[Any, ...]) -> None:
    """Refuse a string method call whose result would be over the limit, before it is
    made (a C-level allocation cannot be interrupted by the watchdog)."""
    numbers = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    if name in ("center", "ljust", "rjust", "zfill") and numbers:
        _check_size(max(numbers), f"str.{name}")
    elif name == "expandtabs" and numbers:
        _check_size(len(text) * max(numbers[0], 1), "str.expandtabs")
    elif name in ("format", "format_map") and _DIGITS.search(text):
        raise LimitError(f"str.{name}: a field width of a million characters or more")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and \
            isinstance(args[1], str):
        hits = len(text) + 1 if args[0] == "" else text.count(args[0])
        _check_size(len(text) + hits * len(args[1]), "str.replace")
    elif name == "join" and args and isinstance(args[0], list | tuple):
        _check_size(sum(len(str(x)) for x in args[0]) + len(text) * len(args[0]), "str.join")


def _operand_size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | bytes) else 0


class _Generator(CodeGenerator):
    """Jinja's code generator, with `~` (concatenation) counted like the output."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.join_bounded((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox with size limits on every operator, filter and string method that
    can make a big value from small ones, and no constant folding (a template such as
    `{{ 9 ** (9 ** 9) }}` would otherwise be computed while it compiles)."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and \
                right > 0 and abs(left) > 1 and right * abs(left).bit_length() > MAX_INT_BITS:
            raise LimitError(f"{left} ** {right} is too large a number")
        if operator == "*":
            n = right if isinstance(right, int) and not isinstance(right, bool) else \
                left if isinstance(left, int) and not isinstance(left, bool) else None
            seq = _operand_size(left) or _operand_size(right)
            if n is not None and seq:
                _check_size(seq * n, "repeating a text or list")
            elif isinstance(left, int) and isinstance(right, int) and \
                    left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise LimitError("the product is too large a number")
        if operator == "+" and (_operand_size(left) or _operand_size(right)):
            _check_size(_operand_size(left) + _operand_size(right), "joining texts")
        if operator == "%" and isinstance(left, str) and _DIGITS.search(left):
            raise LimitError("a format with a field width of a million characters or more")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any,  # noqa: N805
             **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if owner.__class__ is str and name in _TEXT_METHODS:
            _check_str_method(owner, name, args)
            result = super().call(__context, __obj, *args, **kwargs)
            if isinstance(result, str):
                _check_size(len(result), f"str.{name}")
            return result
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str) and getattr(value, "__name__", "") in ("format",
                                                                          "format_map"):
            _check_str_method(owner, value.__name__, ())
        return super().wrap_str_format(value)

    @staticmethod
    def join_bounded(parts: tuple[Any, ...]) -> str:
        """`a ~ b`, counted."""
        return _bounded_concat(parts)


_env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
                optimized=False)
_env.concat = _bounded_concat  # type: ignore[method-assign]
_env.filters["tojson"] = _tojson
_env.filters["truncate_words"] = _truncate_words
for _name in ("center", "indent", "format", "replace", "join", "wordwrap", "truncate"):
    _env.filters[_name] = _bounded_call(_env.filters[_name], _name)


@lru_cache(maxsize=4096)
def _template(source: str) -> Any:
    return _env.from_string(source)


@lru_cache(maxsize=4096)
def _expression(source: str) -> Any:
    return _env.compile_expression(source, undefined_to_none=False)


def render(source: str, context: dict[str, Any], *, what: str = "template") -> str:
    """Render a template to text. Errors become a `StepError` naming `what`."""
    if "{" not in source:  # plain text (most system prompts): nothing to render
        return source
    with _failures(what, "template"), watchdog.limit(RENDER_LIMIT_S):
        return str(_template(source).render(context))


def evaluate(source: str, context: dict[str, Any], *, what: str = "expression") -> Any:
    """Evaluate an expression (`steps.x.items`, `inputs.n > 3`) to a Python value."""
    with _failures(what, "expression"), watchdog.limit(RENDER_LIMIT_S):
        value = _expression(source)(**context)
    return None if isinstance(value, StrictUndefined) else value


@contextmanager
def _failures(what: str, kind: str) -> Iterator[None]:
    """Every way rendering can fail, as a `StepError` naming the field: the recipe's
    fault (a wrong name, a limit reached), never called a bug in Podium."""
    try:
        yield
    except UndefinedError as e:
        raise StepError(f"{what}: {e}", "check the names against the steps' outputs") from None
    except (LimitError, Overrun) as e:
        raise StepError(f"{what}: {e}", f"a {kind} should make a prompt, not a computation: "
                        "simplify it, or do the work in a step of its own") from None
    except (MemoryError, RecursionError) as e:
        raise StepError(f"{what}: the {kind} ran out of "
                        + ("memory" if isinstance(e, MemoryError) else "depth (recursion)"),
                        f"simplify the {kind}: no recursive macros or runaway loops") from None
    except TemplateError as e:
        raise StepError(f"{what}: {e}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError) as e:
        raise StepError(f"{what}: {type(e).__name__}: {e}",
                        f"the {kind} computed something impossible") from None


@lru_cache(maxsize=4096)
def parse(source: str, *, expression: bool = False) -> nodes.Template:
    """Parse without rendering; raises `TemplateSyntaxError` with a line number (also
    for a source too long or too deeply nested to parse safely)."""
    if len(source) > MAX_SOURCE:
        raise TemplateSyntaxError(f"{len(source):,} characters, over the limit of "
                                  f"{MAX_SOURCE:,} for one template", 1)
    try:
        return _parse(source, expression)
    except RecursionError:
        raise TemplateSyntaxError("nested too deeply to read", 1) from None


def _parse(source: str, expression: bool) -> nodes.Template:
    if expression:
        # compile_expression wraps the source the same way; parse it that way to see names.
        return _env.parse("{{ " + source + " }}")
    return _env.parse(source)


def filter_names() -> list[str]:
    """Every filter a template may use."""
    return sorted(_env.filters)


def compile_check(source: str, *, expression: bool = False) -> None:
    """Compile (and cache) a template, so unknown filters fail at check time. Nothing is
    computed while compiling (no constant folding), so this is quick whatever the
    template says."""
    try:
        if expression:
            _expression(source)
        else:
            _template(source)
    except (RecursionError, MemoryError):
        raise TemplateSyntaxError("nested too deeply to compile", 1) from None


@lru_cache(maxsize=4096)
def references(tree: nodes.Template) -> tuple[frozenset[str], frozenset[str], bool]:
    """The step ids and input names a parsed template uses, and whether it reads `steps`
    in a way that names no step (`{% set s = steps %}`, `steps[inputs.k]`), which
    would hide a dependency."""
    steps: set[str] = set()
    inputs: set[str] = set()
    named: set[int] = set()  # ids of `steps` / `inputs` Name nodes used with a fixed key
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        base = node.node
        if not isinstance(base, nodes.Name):
            continue
        key: Any
        if isinstance(node, nodes.Getattr):
            key = node.attr
        elif isinstance(node.arg, nodes.Const):
            key = node.arg.value
        else:
            continue
        named.add(id(base))
        if base.name == "steps":
            steps.add(str(key))
        elif base.name == "inputs":
            inputs.add(str(key))
    dynamic = any(n.name == "steps" and id(n) not in named
                  for n in tree.find_all(nodes.Name))
    return frozenset(steps), frozenset(inputs), dynamic


@lru_cache(maxsize=4096)
def fields_read(tree: nodes.Template) -> frozenset[tuple[str, str]]:
    """(step id, field) for every `steps.<id>.<field>` (or `steps['<id>']['<field>']`)
    a template reads, so a misspelt field of an output whose shape is known is caught
    before the run."""
    found: set[tuple[str, str]] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        field = _key(node)
        inner = node.node
        if field is None or not isinstance(inner, nodes.Getattr | nodes.Getitem):
            continue
        step = _key(inner)
        if step is not None and isinstance(inner.node, nodes.Name) and \
                inner.node.name == "steps":
            found.add((step, field))
    return frozenset(found)


def _key(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def loaders_used(tree: nodes.Template) -> str | None:
    """The first `{% include %}`, `{% import %}` or `{% extends %}` of a template: they
    read other template files, which a recipe's templates cannot."""
    for kind, word in ((nodes.Include, "include"), (nodes.Import, "import"),
                       (nodes.FromImport, "from ... import"), (nodes.Extends, "extends")):
        if tree.find(kind) is not None:
            return word
    return None


@lru_cache(maxsize=4096)
def free_names(tree: nodes.Template) -> frozenset[str]:
    """The top-level names a template uses without defining them. (Cached, and apart
    from `references`: `meta.find_undeclared_variables` runs Jinja's code generator.)"""
    from jinja2 import meta

    return frozenset(meta.find_undeclared_variables(tree))


__all__ = ["GLOBAL_NAMES", "TemplateSyntaxError", "evaluate", "free_names", "parse",
           "references", "render"]
