"""The recipe format: shipped recipes load, and every broken recipe is reported as
`file:line: field: message` with a hint, at the exact line, all problems at once."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from podium.core.errors import RecipeError, RecipeErrors
from podium.core.recipe import load as recipe
from podium.core.steps import registry

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "recipes").glob("*.toml"))

# A sound start; each broken case appends a step, so its lines come after these.
BASE = textwrap.dedent('''\
    name = "t"
    description = "a test recipe"

    [inputs.text]
    type = "string"
    default = "hello"

    [steps.summarize]
    kind = "llm"
    prompt = "Summarize: {{ inputs.text }}"
    ''')


def problems(source: str, path: str = "r.toml") -> list[RecipeError]:
    """The errors `loads` raises for `source` (one, or the list of a `RecipeErrors`)."""
    with pytest.raises(RecipeError) as info:
        recipe.loads(source, path)
    err = info.value
    return err.errors if isinstance(err, RecipeErrors) else [err]


def line_of(source: str, start: str) -> int:
    """The 1-based number of the one line of `source` that starts with `start`."""
    found = [n for n, text in enumerate(source.splitlines(), start=1)
             if text.strip().startswith(start)]
    assert len(found) == 1, f"{start!r} is on lines {found}"
    return found[0]


def by_field(errors: list[RecipeError], field: str) -> RecipeError:
    """The one error about `field`."""
    found = [e for e in errors if e.field == field]
    assert len(found) == 1, f"no single error for {field}: {[str(e) for e in errors]}"
    return found[0]


# --- shipped recipes ---------------------------------------------------------------------


def test_shipped_recipes_exist() -> None:
    """The parametrized test below is not vacuous."""
    assert len(SHIPPED) >= 3


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_recipe_loads(path: Path) -> None:
    """Every recipe in recipes/ validates and plans every one of its steps."""
    r = recipe.load(path)
    assert r.name == path.stem
    assert r.path == str(path)
    assert r.source == path.read_text()
    assert sorted(r.plan.order) == sorted(r.steps)


# --- one problem each: exact line, field, message and hint -------------------------------

CASES: list[Any] = [
    pytest.param('[steps.title]\nkind = "llm"\npromt = "Title for {{ steps.summarize }}"\n',
                 "promt =", "steps.title.promt", "unknown field 'promt'",
                 "did you mean 'prompt'?", id="unknown-key"),
    pytest.param('[steps.tag]\nkind = "classify"\ninput = "{{ steps.summarize }}"\n',
                 "[steps.tag]", "steps.tag.labels", "missing required field 'labels'",
                 "add `labels = ...` to [steps.tag]", id="missing-field"),
    pytest.param('[steps.title]\nkind = "lm"\nprompt = "x"\n',
                 'kind = "lm"', "steps.title.kind", "unknown step kind 'lm'",
                 "did you mean 'llm'?", id="unknown-kind"),
    pytest.param('[steps.title]\nprompt = "x"\n',
                 "[steps.title]", "steps.title.kind", "missing required field 'kind'",
                 'kind = "llm"', id="missing-kind"),
    pytest.param('[steps.title]\nkind = "template"\ntemplate = "T: {{ steps.sumarize }}"\n',
                 "template =", "steps.title.template", "unknown step 'steps.sumarize'",
                 "did you mean 'steps.summarize'?", id="unknown-step-ref"),
    pytest.param('[steps.title]\nkind = "template"\ntemplate = "T: {{ inputs.txt }}"\n',
                 "template =", "steps.title.template", "unknown input 'inputs.txt'",
                 "did you mean 'inputs.text'?", id="unknown-input-ref"),
    pytest.param('[steps.title]\nkind = "template"\ntemplate = "T: {{ step.summarize }}"\n',
                 "template =", "steps.title.template", "unknown name 'step'",
                 "did you mean 'steps'?", id="unknown-top-level-name"),
    pytest.param('[steps.title]\nkind = "template"\ntemplate = "x"\nneeds = ["sumarize"]\n',
                 "needs =", "steps.title.needs.0", "unknown step 'sumarize'",
                 "did you mean 'summarize'?", id="unknown-needs"),
    pytest.param('[steps.title]\nkind = "template"\ntemplate = "{% if inputs.text %}no end"\n',
                 "template =", "steps.title.template", "template syntax error",
                 "Jinja2", id="jinja-syntax"),
    pytest.param('[steps.route]\nkind = "branch"\non = "inputs.text"\n'
                 'cases = { yes = ["sumarize"] }\n',
                 "cases =", "steps.route.cases.yes", "unknown step 'sumarize'",
                 "did you mean 'summarize'?", id="branch-unknown-case-step"),
    pytest.param('[steps.my-step]\nkind = "template"\ntemplate = "x"\n',
                 "[steps.my-step]", "steps.my-step", "step id 'my-step' is not a valid name",
                 "'my_step'", id="invalid-step-id"),
    pytest.param('[steps.title]\nkind = "llm"\nprompt = "x"\nverify = "answer != \'\'"\n',
                 "verify =", "steps.title.verify", "verify only applies to route = \"cascade\"",
                 'set route = "cascade"', id="verify-without-cascade"),
    pytest.param('[steps.title]\nkind = "llm"\nprompt = "x"\nroute = "cascade"\n'
                 'model = "smollm2"\nverify = "answer != \'\'"\n',
                 "verify =", "steps.title.verify", "pins the model, so there is no cascade",
                 "remove model", id="verify-with-pinned-model"),
    pytest.param('[steps.title]\nkind = "llm"\nprompt = "x"\nroute = "cascade"\n'
                 'verify = "anwser | length < 80"\n',
                 "verify =", "steps.title.verify", "unknown name 'anwser'",
                 "did you mean 'answer'?", id="verify-unknown-name"),
    pytest.param('[steps.title]\nkind = "llm"\nprompt = "x"\nmax_tokens = "ten"\n',
                 "max_tokens =", "steps.title.max_tokens", "valid integer",
                 "", id="wrong-type"),
]


@pytest.mark.parametrize(("extra", "anchor", "field", "message", "hint"), CASES)
def test_broken_recipe_is_located(extra: str, anchor: str, field: str, message: str,
                                  hint: str) -> None:
    """Each kind of mistake is reported as `file:line: field: message` at the exact line
    of the offending key, with a hint that says what to do."""
    source = BASE + "\n" + extra
    line = line_of(source, anchor)
    err = by_field(problems(source), field)
    assert (err.file, err.line, err.field) == ("r.toml", line, field)
    assert str(err).startswith(f"r.toml:{line}: {field}: ")
    assert message in err.message
    assert err.hint, f"no hint for: {err}"
    assert hint in err.hint


def test_typo_gives_field_list() -> None:
    """A misspelt key is one error (not also "missing 'prompt'"), and its hint lists
    the fields this kind of step accepts."""
    source = BASE + '\n[steps.title]\nkind = "llm"\npromt = "x"\n'
    [err] = problems(source)
    assert err.field == "steps.title.promt"
    assert err.hint is not None
    assert err.hint.startswith("did you mean 'prompt'?")
    assert "Known fields:" in err.hint and "max_tokens" in err.hint


def test_toml_syntax_error_keeps_tomllib_line() -> None:
    """A TOML syntax error points at the line tomllib names, without tomllib's
    '(at line N, column M)' tail in the message."""
    source = BASE + '\n[steps.title]\nkind = "template"\ntemplate = "unterminated\n'
    [err] = problems(source)
    assert err.line == line_of(source, "template = \"unterminated")
    assert err.message.startswith("TOML syntax: ")
    assert "(at line" not in err.message
    assert err.hint
    assert str(err).startswith(f"r.toml:{err.line}: TOML syntax: ")


def test_cycle_lists_its_steps() -> None:
    """A cycle is one error that names every step of it, at the first one's header."""
    source = BASE + textwrap.dedent('''
        [steps.a]
        kind = "template"
        template = "{{ steps.b }}"

        [steps.b]
        kind = "template"
        template = "x"
        needs = ["c"]

        [steps.c]
        kind = "template"
        template = "{{ steps.a }}"
        ''')
    [err] = problems(source)
    assert err.message.startswith("cycle: ")
    chain = err.message.removeprefix("cycle: ").split(" -> ")
    assert chain[0] == chain[-1]
    assert set(chain) == {"a", "b", "c"}
    assert err.field == f"steps.{chain[0]}"
    assert err.line == line_of(source, f"[steps.{chain[0]}]")
    assert err.hint


def test_line_after_multiline_string_is_exact() -> None:
    """Key-like text inside a multi-line string does not shift or steal line numbers."""
    source = BASE + textwrap.dedent('''
        [steps.title]
        kind = "llm"
        prompt = """Write a title.
        max_tokens = 5
        [steps.fake]
        """
        system = \'\'\'Be brief.
        temperature = 1
        \'\'\'
        max_tokens = "ten"
        temperature = "hot"
        ''')
    errors = problems(source)
    assert by_field(errors, "steps.title.max_tokens").line == line_of(source, 'max_tokens = "')
    assert by_field(errors, "steps.title.temperature").line == line_of(source,
                                                                        'temperature = "')


def test_line_of_key_in_inline_table() -> None:
    """A step written as an inline table is located at its line."""
    source = BASE + '\n[steps]\ntitle = { kind = "llm", promt = "x" }\n'
    err = by_field(problems(source), "steps.title.promt")
    assert err.line == line_of(source, "title = {")


def test_unknown_key_in_input_and_top_level() -> None:
    """Typos outside steps are caught too: in an input and at the top of the file."""
    source = "nmae = \"x\"\n" + BASE.replace('type = "string"', 'typ = "string"')
    errors = problems(source)
    top = by_field(errors, "nmae")
    assert top.line == 1
    assert top.hint is not None and top.hint.startswith("did you mean 'name'?")
    inp = by_field(errors, "inputs.text.typ")
    assert inp.line == line_of(source, "typ =")
    assert inp.hint is not None and inp.hint.startswith("did you mean 'type'?")


def test_map_substep_typo() -> None:
    """A typo inside a map's sub-step is located in `[steps.m.step]` and suggests the
    sub-step's own fields."""
    source = BASE + textwrap.dedent('''
        [steps.m]
        kind = "map"
        over = "[1, 2]"

        [steps.m.step]
        kind = "llm"
        promt = "{{ item }}"
        ''')
    err = by_field(problems(source), "steps.m.step.promt")
    assert err.line == line_of(source, "promt =")
    assert err.hint is not None and err.hint.startswith("did you mean 'prompt'?")


def test_map_substep_missing_field_names_the_substep_table() -> None:
    """The hint for a field missing from a map's sub-step says to add it to the table
    where it belongs, `[steps.m.step]`, not to the map step."""
    source = BASE + textwrap.dedent('''
        [steps.m]
        kind = "map"
        over = "[1, 2]"

        [steps.m.step]
        kind = "llm"
        max_tokens = 5
        ''')
    err = by_field(problems(source), "steps.m.step.prompt")
    assert err.line == line_of(source, "[steps.m.step]")
    assert err.hint == "add `prompt = ...` to [steps.m.step]"


@pytest.mark.parametrize("sid", ["my-step", "1st", "has space", "a²"])
def test_invalid_step_ids(sid: str) -> None:
    """Step ids must be identifiers a template can name (STEP_ID_PATTERN), or
    `{{ steps.<id> }}` could never refer to them."""
    source = BASE + f'\n[steps."{sid}"]\nkind = "template"\ntemplate = "x"\n'
    err = by_field(problems(source), f"steps.{sid}")
    assert "is not a valid name" in err.message
    assert err.line == line_of(source, f'[steps."{sid}"]')


# --- many problems at once ---------------------------------------------------------------


def test_schema_problems_reported_together() -> None:
    """Several schema mistakes in different steps come back in one `RecipeErrors`."""
    source = BASE + textwrap.dedent('''
        [steps.a]
        kind = "llm"
        prompt = "x"
        promt = "y"

        [steps.b]
        kind = "lm"
        prompt = "x"

        [steps.c]
        kind = "llm"
        prompt = "x"
        max_tokens = "ten"
        ''')
    with pytest.raises(RecipeErrors) as info:
        recipe.loads(source, "r.toml")
    located = {(e.field, e.line) for e in info.value.errors}
    assert ("steps.a.promt", line_of(source, "promt =")) in located
    assert ("steps.b.kind", line_of(source, 'kind = "lm"')) in located
    assert ("steps.c.max_tokens", line_of(source, "max_tokens =")) in located
    assert str(info.value).count("\n") == len(info.value.errors) - 1


def test_reference_problems_reported_together() -> None:
    """Several reference mistakes come back together, each at its own line."""
    source = BASE + textwrap.dedent('''
        [steps.a]
        kind = "template"
        template = "{{ steps.sumarize }}"

        [steps.b]
        kind = "template"
        template = "{{ inputs.txt }}"
        needs = ["zzz"]
        ''')
    with pytest.raises(RecipeErrors) as info:
        recipe.loads(source, "r.toml")
    errors = info.value.errors
    assert len(errors) == 3
    assert by_field(errors, "steps.a.template").line == line_of(source, 'template = "{{ steps')
    assert by_field(errors, "steps.b.template").line == line_of(source, 'template = "{{ inputs')
    assert by_field(errors, "steps.b.needs.0").line == line_of(source, "needs =")


def test_load_names_the_file(tmp_path: Path) -> None:
    """`load` puts the file's path in each error; a missing file is a RecipeError too."""
    path = tmp_path / "broken.toml"
    path.write_text(BASE + '\n[steps.x]\nkind = "lm"\nprompt = "x"\n')
    with pytest.raises(RecipeErrors) as info:
        recipe.load(path)
    assert info.value.errors[0].file == str(path)
    assert str(info.value).startswith(f"{path}:")
    with pytest.raises(RecipeError) as missing:
        recipe.load(tmp_path / "nope.toml")
    assert "no such recipe file" in missing.value.message
    assert missing.value.hint


# --- schema and hash ---------------------------------------------------------------------


def test_json_schema_describes_the_format() -> None:
    """The JSON Schema is serializable, has steps/inputs/outputs, resolves its $refs,
    and offers exactly the step kinds the loader knows."""
    schema = recipe.json_schema()
    json.dumps(schema)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object"
    assert {"steps", "inputs", "outputs"} <= set(schema["properties"])
    assert "steps" in schema["required"]
    assert schema["additionalProperties"] is False

    defs = schema["$defs"]
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    assert refs
    for ref in refs:
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in defs, ref

    step_refs = schema["properties"]["steps"]["additionalProperties"]["oneOf"]
    kinds = {defs[r["$ref"].removeprefix("#/$defs/")]["properties"]["kind"]["const"]
             for r in step_refs}
    assert kinds == set(registry.names())
    # Aliases, not Python names: authors write `schema`, not `output_schema`.
    assert "schema" in defs["LlmStep"]["properties"]
    assert "output_schema" not in defs["LlmStep"]["properties"]


def test_hash_follows_the_source() -> None:
    """The same text hashes the same; any change to it changes the hash."""
    a = recipe.loads(BASE)
    assert recipe.loads(BASE).hash == a.hash
    assert recipe.loads(BASE + "# a comment\n").hash != a.hash
    assert recipe.loads(BASE.replace("Summarize:", "Sum up:")).hash != a.hash
    assert len(a.hash) == 64


def test_name_defaults_to_file_stem() -> None:
    """A recipe without `name` is named after its file."""
    r = recipe.loads(BASE.replace('name = "t"\n', ""), "/some/where/my-flow.toml")
    assert r.name == "my-flow"


def test_defaults_of_the_wrong_type_and_computed_step_refs_fail_check() -> None:
    from podium.core.errors import RecipeErrors

    with pytest.raises(RecipeErrors) as caught:
        recipe.loads('[inputs.n]\ntype = "integer"\ndefault = "abc"\n'
                     '[steps.a]\nkind = "template"\ntemplate = "{% set s = steps %}{{ s.b }}"\n'
                     '[steps.b]\nkind = "template"\ntemplate = "x"\n', "r.toml")
    messages = [str(e) for e in caught.value.errors]
    assert any("r.toml:3: inputs.n.default" in m and "must be integer" in m for m in messages)
    assert any("r.toml:6: steps.a.template: steps must be read by name" in m
               for m in messages)
