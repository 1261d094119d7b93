"""Jinja2 in a sandbox: templates render text, expressions give values.

A step's text can never run code: the sandbox blocks attribute tricks, and the
only names a template sees are `inputs`, `steps`, and inside a `map` `item` and
`index`. Compiled templates are cached, since the same template renders once per
step per run and compiling costs far more than rendering.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from podium.core.errors import StepError

GLOBAL_NAMES = frozenset({"inputs", "steps", "item", "index"})


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


def _truncate_words(value: Any, count: int = 300) -> str:
    words = str(value).split()
    return " ".join(words[:count]) + (" ..." if len(words) > count else "")


_env = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)
_env.filters["tojson"] = _tojson
_env.filters["truncate_words"] = _truncate_words


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
    try:
        return str(_template(source).render(context))
    except UndefinedError as e:
        raise StepError(f"{what}: {e}", "check the names against the steps' outputs") from None
    except TemplateError as e:
        raise StepError(f"{what}: {e}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError) as e:
        raise StepError(f"{what}: {type(e).__name__}: {e}",
                        "the template computed something impossible") from None


def evaluate(source: str, context: dict[str, Any], *, what: str = "expression") -> Any:
    """Evaluate an expression (`steps.x.items`, `inputs.n > 3`) to a Python value."""
    try:
        value = _expression(source)(**context)
    except UndefinedError as e:
        raise StepError(f"{what}: {e}", "check the names against the steps' outputs") from None
    except TemplateError as e:
        raise StepError(f"{what}: {e}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError) as e:
        raise StepError(f"{what}: {type(e).__name__}: {e}",
                        "the expression computed something impossible") from None
    return None if isinstance(value, StrictUndefined) else value


@lru_cache(maxsize=4096)
def parse(source: str, *, expression: bool = False) -> nodes.Template:
    """Parse without rendering; raises `TemplateSyntaxError` with a line number."""
    if expression:
        # compile_expression wraps the source the same way; parse it that way to see names.
        return _env.parse("{{ " + source + " }}")
    return _env.parse(source)


def filter_names() -> list[str]:
    """Every filter a template may use."""
    return sorted(_env.filters)


def compile_check(source: str, *, expression: bool = False) -> None:
    """Compile (and cache) a template, so unknown filters fail at check time."""
    if expression:
        _expression(source)
    else:
        _template(source)


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
def free_names(tree: nodes.Template) -> frozenset[str]:
    """The top-level names a template uses without defining them. (Cached, and apart
    from `references`: `meta.find_undeclared_variables` runs Jinja's code generator.)"""
    from jinja2 import meta

    return frozenset(meta.find_undeclared_variables(tree))


__all__ = ["GLOBAL_NAMES", "TemplateSyntaxError", "evaluate", "free_names", "parse",
           "references", "render"]
