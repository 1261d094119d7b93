"""The planner: where dependencies come from, the order steps run in, what lies
downstream, and which names templates and expressions may use."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from podium.core.errors import RecipeError, RecipeErrors
from podium.core.recipe import check
from podium.core.recipe import load as recipe
from podium.core.recipe.schema import Recipe

ROOT = Path(__file__).resolve().parent.parent

INPUT = '[inputs.text]\ntype = "string"\ndefault = "hello"\n'


def load(body: str) -> Recipe:
    """A recipe with one string input `text` and the given steps."""
    return recipe.loads(INPUT + textwrap.dedent(body), "r.toml")


def errors(body: str) -> list[RecipeError]:
    """The problems `loads` reports for the given steps."""
    with pytest.raises(RecipeErrors) as info:
        load(body)
    return info.value.errors


def template(sid: str, text: str = "x", needs: str = "") -> str:
    """A `template` step as TOML."""
    extra = f"needs = {needs}\n" if needs else ""
    return f'\n[steps.{sid}]\nkind = "template"\ntemplate = "{text}"\n{extra}'


# --- dependencies ------------------------------------------------------------------------


def test_deps_from_needs_and_template_references() -> None:
    """A step depends on its `needs` and on every step its templates name, by attribute
    or by subscript; input references add no dependency."""
    r = load(template("fetch", "{{ inputs.text }}")
             + template("clean", "x", needs='["fetch"]')
             + template("report", "{{ steps.clean }} {{ steps['fetch'] | length }}"))
    p = r.plan
    assert p.deps == {"fetch": set(), "clean": {"fetch"}, "report": {"clean", "fetch"}}
    assert p.dependents["fetch"] == {"clean", "report"}


def test_deps_from_every_template_field() -> None:
    """References in `system`, a classify's `input` and `instructions` count too."""
    r = load(template("a") + template("b") + template("c") + '''
[steps.ask]
kind = "llm"
system = "Context: {{ steps.a }}"
prompt = "hi"

[steps.label]
kind = "classify"
input = "{{ steps.b }}"
instructions = "Consider {{ steps.c }}"
labels = ["x", "y"]
''')
    deps = r.plan.deps
    assert deps["ask"] == {"a"}
    assert deps["label"] == {"b", "c"}


def test_branch_governs_its_cases() -> None:
    """Every step a branch may choose (any case or the default) depends on the branch,
    and `governed_by` records which branch chooses it."""
    r = recipe.load(ROOT / "recipes" / "triage.toml")
    p = r.plan
    assert p.deps["dispatch"] == {"kind"}
    for handler in ("billing", "bug", "question"):
        assert p.deps[handler] == {"dispatch"}
        assert p.governed_by[handler] == "dispatch"
    assert p.deps["reply"] == {"kind", "billing", "bug", "question"}
    assert set(p.governed_by) == {"billing", "bug", "question"}


def test_map_depends_on_over_and_substep() -> None:
    """A map depends on the steps in `over` and in its sub-step's templates; inside the
    sub-step `item` and `index` are allowed names, not errors."""
    r = load(template("people", "[]") + template("style") + '''
[steps.each]
kind = "map"
over = "steps.people"

[steps.each.step]
kind = "llm"
prompt = "{{ index }}: describe {{ item }} in the style of {{ steps.style }}"
''')
    assert r.plan.deps["each"] == {"people", "style"}


# --- order -------------------------------------------------------------------------------


def test_order_follows_dependencies_not_declaration() -> None:
    """Steps declared before what they depend on still run after it."""
    r = load(template("report", "{{ steps.summary }}")
             + template("summary", "{{ steps.extract }}")
             + template("extract"))
    assert r.plan.order == ["extract", "summary", "report"]


def test_order_keeps_declaration_order_among_peers() -> None:
    """Independent steps keep the order the author wrote them in (not alphabetical)."""
    r = load(template("zeta") + template("alpha") + template("mid")
             + template("last", "{{ steps.alpha }}")
             + template("omega"))
    order = r.plan.order
    peers = [s for s in order if s != "last"]
    assert peers == ["zeta", "alpha", "mid", "omega"]
    assert order.index("last") > order.index("alpha")


def test_order_of_shipped_recipe() -> None:
    """The triage recipe's plan runs the classifier, then the branch, then the handlers
    in declared order, then the reply."""
    order = (recipe.load(ROOT / "recipes" / "triage.toml")).plan.order
    assert order == ["kind", "dispatch", "billing", "bug", "question", "reply"]


def test_descendants() -> None:
    """`descendants` is everything downstream, transitively, and not the step itself."""
    p = (recipe.load(ROOT / "recipes" / "triage.toml")).plan
    assert p.descendants("kind") == {"dispatch", "billing", "bug", "question", "reply"}
    assert p.descendants("dispatch") == {"billing", "bug", "question", "reply"}
    assert p.descendants("billing") == {"reply"}
    assert p.descendants("reply") == set()

    chain = (load(template("a") + template("b", "{{ steps.a }}")
                            + template("c", "x", needs='["b"]') + template("d"))).plan
    assert chain.descendants("a") == {"b", "c"}
    assert chain.descendants("d") == set()


# --- names templates may use -------------------------------------------------------------


@pytest.mark.parametrize("where", ["plain", "over"])
def test_item_only_inside_map_substep(where: str) -> None:
    """`item` is unknown in an ordinary step and in a map's own `over` expression."""
    if where == "plain":
        body = template("a", "{{ item }}")
        field = "steps.a.template"
    else:
        body = '''
[steps.m]
kind = "map"
over = "item"

[steps.m.step]
kind = "template"
template = "{{ item }}"
'''
        field = "steps.m.over"
    [err] = errors(body)
    assert err.field == field
    assert err.message == "unknown name 'item'"


def test_step_cannot_refer_to_itself() -> None:
    """Self-reference by template, by `needs`, and by a branch choosing itself are
    each an error."""
    errs = errors(template("a", "{{ steps.a }}")
                  + template("b", "x", needs='["b"]')
                  + '\n[steps.c]\nkind = "branch"\non = "1"\ncases = { x = ["c"] }\n')
    messages = {e.field: e.message for e in errs}
    assert "cannot refer to its own output" in messages["steps.a.template"]
    assert "cannot need itself" in messages["steps.b.needs"]
    assert "cannot choose itself" in messages["steps.c.cases.x"]


def test_map_substep_cannot_refer_to_its_map() -> None:
    """Inside a map, `steps.<the map>` is its own output: an error, not a dependency."""
    [err] = errors('''
[steps.m]
kind = "map"
over = "[1]"

[steps.m.step]
kind = "template"
template = "{{ steps.m }}"
''')
    assert err.field == "steps.m.step.template"
    assert "own output" in err.message


def test_cycle_through_branch_governance() -> None:
    """A branch whose `on` reads a step it chooses is a cycle."""
    [err] = errors(template("handler") + '''
[steps.route]
kind = "branch"
on = "steps.handler"
cases = { yes = ["handler"] }
''')
    assert err.message.startswith("cycle: ")
    assert set(err.message.removeprefix("cycle: ").split(" -> ")) == {"route", "handler"}


def test_branch_case_named_default_is_checked() -> None:
    """A case literally named `default` is still a case: its unknown step is reported
    (it must not be shadowed by the branch's `default` field)."""
    errs = errors(template("a") + '''
[steps.route]
kind = "branch"
on = "inputs.text"
cases = { default = ["zz"], other = ["a"] }
''')
    assert any(e.message == "unknown step 'zz'" for e in errs)


def test_step_chosen_by_case_named_default_depends_on_branch() -> None:
    """The step of a case named `default` waits for the branch like any other case."""
    p = (load(template("a") + template("b") + '''
[steps.route]
kind = "branch"
on = "inputs.text"
cases = { default = ["a"], other = ["b"] }
''')).plan
    assert p.governed_by == {"a": "route", "b": "route"}
    assert p.deps["b"] == {"route"}
    assert p.deps["a"] == {"route"}


# --- outputs -----------------------------------------------------------------------------


def test_outputs_expressions_are_checked() -> None:
    """Outputs are expressions: unknown steps, unknown names and syntax errors are
    reported at their line in `[outputs]`."""
    source = INPUT + template("summary") + textwrap.dedent('''
        [outputs]
        good = "steps.summary"
        typo = "steps.sumary"
        loose = "item"
        broken = "steps.summary +"
        ''')
    with pytest.raises(RecipeErrors) as info:
        recipe.loads(source, "r.toml")
    found = {str(e.field): e for e in info.value.errors}
    assert set(found) == {"outputs.typo", "outputs.loose", "outputs.broken"}
    lines = source.splitlines()
    for name, err in found.items():
        key = name.removeprefix("outputs.")
        assert err.line is not None and lines[err.line - 1].startswith(f"{key} = "), name
    assert found["outputs.typo"].hint == "did you mean 'steps.summary'?"
    assert found["outputs.loose"].message == "unknown name 'item'"
    assert "expression syntax error" in found["outputs.broken"].message


def test_check_of_sound_recipe_is_empty() -> None:
    """`check` finds nothing wrong with every shipped recipe."""
    for path in sorted((ROOT / "recipes").glob("*.toml")):
        assert check.problems(recipe.load(path)) == [], path
