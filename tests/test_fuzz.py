"""A seeded fuzz of recipes and templates (issue 13): every mutated recipe is either
sound or refused with `file:line` errors, and every hostile template or input ends
its step (or the run) cleanly, in bounded time and memory, never with a traceback.

The counts and seed are fixed so a failure reproduces; `bench/fuzz.py` runs the same
generators for longer."""

from __future__ import annotations

import asyncio
import random
import resource
import time
from pathlib import Path

import pytest

from podium.core.errors import PodiumError, RecipeError, RecipeErrors
from podium.core.recipe.load import loads
from tests.conftest import ScriptedProvider
from tests.test_engine import make_engine

SHIPPED = sorted((Path(__file__).resolve().parent.parent / "recipes").glob("*.toml"))
SEED = 20261203
RECIPES = 1000
TEMPLATES = 200
LIMIT_S = 5.0
LIMIT_MB = 500

VALUES = ['{ a = 1 }', '[1, 2]', '-1', '1e309', '"x"', 'true', '99999999999999999999',
          '"{{ steps.nope }}"', '"{% for %}"', '""', '"{{ inputs.zz }}"', '[[1]]', 'nan',
          '"{{ steps }}"', '{ type = { a = 1 } }', '"a" "b"', '0', '3.5', '"kind"']
KINDS = ["llm", "classify", "template", "branch", "map", "ensemble", "review", "lmm", "",
         "agent"]
NOISE = "[]{}=\"'#., \n0x-\\"


def mutate(text: str, rng: random.Random) -> str:
    """One to three random edits of a recipe's text."""
    for _ in range(rng.randint(1, 3)):
        lines = text.split("\n")
        i = rng.randrange(len(lines))
        op = rng.randrange(10)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3 and lines[i]:
            k = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:k] + rng.choice(NOISE) + lines[i][k + 1:]
        elif op == 4 and "=" in lines[i]:
            lines[i] = lines[i].split("=", 1)[0] + "= " + rng.choice(VALUES)
        elif op == 5 and "=" in lines[i]:
            key, _, rest = lines[i].partition("=")
            key = key.strip()
            if key:
                k = rng.randrange(len(key))
                key = key[:k] + key[k + 1:] if rng.random() < 0.5 else key[:k] + key[k] + key[k:]
            lines[i] = f"{key} ={rest}"
        elif op == 6:
            return "\n".join(lines)[:rng.randrange(len(text) + 1)]
        elif op == 7:
            lines.insert(i, f'[steps.x{rng.randrange(9)}]\nkind = "{rng.choice(KINDS)}"')
        elif op == 8:
            depth = rng.choice([50, 500, 3000])
            lines.insert(i, "deep = " + "[" * depth + "]" * depth)
        else:
            lines[i] = lines[i].replace('kind = "', f'kind = "{rng.choice(KINDS)}', 1)
        text = "\n".join(lines)
    return text


def test_a_thousand_mutated_recipes_are_sound_or_refused_with_a_place() -> None:
    rng = random.Random(SEED)
    sources = [p.read_text() for p in SHIPPED]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused = slowest = 0.0
    for n in range(RECIPES):
        text = mutate(rng.choice(sources), rng)
        started = time.perf_counter()
        try:
            loads(text, f"fuzz{n}.toml")
        except RecipeError as e:
            refused += 1
            for err in (e.errors if isinstance(e, RecipeErrors) else [e]):
                assert err.file == f"fuzz{n}.toml", (n, str(err))
                assert err.line is not None, (n, str(err), text)
                assert err.message, n
        slowest = max(slowest, time.perf_counter() - started)
        assert slowest < LIMIT_S, (n, text)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < LIMIT_MB
    assert 0.3 * RECIPES < refused < RECIPES  # the mutations do break things, not all


HOSTILE = [
    "{{ 'a' * N }}", "{{ N ** N ** N }}", "{{ 'x' | center(N) }}", "{{ '%0Nd' | format(1) }}",
    "{{ '{:>N}'.format(1) }}", "{% for i in range(N) %}{{ i }}{% endfor %}",
    "{% for i in range(N) %}{% for j in range(N) %}{% endfor %}{% endfor %}",
    "{{ inputs.big * N }}", "{{ inputs.big | replace('a', inputs.big) }}",
    "{{ (inputs.big ~ inputs.big) | length }}", "{{ steps.free.__class__ }}",
    "{{ ''.__class__.__mro__ }}", "{{ range.__globals__ }}", "{{ lipsum }}", "{{ cycler }}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "{{ [1] * N | length }}",
    "{{ inputs.big | wordwrap(N) | length }}", "{{ inputs.big.split('a') | join(inputs.big) "
    "| length }}", "{{ inputs.nope }}", "{{ steps.free.nope }}", "{{ 1 / 0 }}",
    "{{ inputs.big | tojson | length }}", "{{ inputs.obj.a.b.c }}", "{{ '\\u0000' * N }}",
]
SIZES = [0, 1, 7, 100, 10**5, 10**7, 10**9, 10**12]


def test_two_hundred_hostile_templates_end_their_step_not_the_run() -> None:
    rng = random.Random(SEED)
    engine = make_engine(ScriptedProvider())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = {"succeeded": 0, "failed": 0}
    for n in range(TEMPLATES):
        source = rng.choice(HOSTILE).replace("N", str(rng.choice(SIZES)))
        big = "a" * rng.choice([0, 10, 10**5, 4 * 10**6])
        toml = ('[inputs.big]\n[inputs.obj]\ntype = "object"\ndefault = {}\n'
                '[steps.free]\nkind = "template"\ntemplate = "free"\n'
                f'[steps.hostile]\nkind = "template"\ntemplate = {source!r}\n'.replace(
                    "'", "'"))
        started = time.perf_counter()
        try:
            recipe = loads(toml.replace(f"template = {source!r}",
                                        "template = '''" + source + "'''"), f"t{n}.toml")
        except RecipeError as e:
            assert all(err.line for err in (e.errors if isinstance(e, RecipeErrors)
                                            else [e])), (n, source)
            continue
        try:
            result = asyncio.run(engine.run(recipe, {"big": big}))
        except PodiumError:
            continue  # refused before it ran (an input over its limit), with a message
        elapsed = time.perf_counter() - started
        assert elapsed < LIMIT_S, (n, source, elapsed)
        steps = {s.step_id: s for s in engine.store.get_steps(result.run_id)}
        assert steps["free"].status == "succeeded", (n, source)
        hostile = steps["hostile"]
        outcomes[hostile.status] += 1
        if hostile.status == "failed":
            assert hostile.error and "internal error" not in hostile.error, (n, source)
            assert "bug in Podium" not in (hostile.hint or ""), (n, source, hostile.error)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < LIMIT_MB
    assert outcomes["failed"] > 20 and outcomes["succeeded"] > 20, outcomes


@pytest.mark.parametrize("argv", [
    ["recipe", "check", "FILE"],
    ["run", "FILE", "-q"],
])
def test_the_cli_shows_no_traceback_for_broken_recipes(argv: list[str], tmp_path: Path) -> None:
    """A sample through the real command: exit 0, 1 or 2 and no Python traceback."""
    import os
    import subprocess
    import sys

    rng = random.Random(SEED + 1)
    sources = [p.read_text() for p in SHIPPED if "template" in p.read_text()]
    env = dict(os.environ, PODIUM_HOME=str(tmp_path / "home"))
    for n in range(6):
        path = tmp_path / f"cli{n}.toml"
        path.write_text(mutate(rng.choice(sources), rng))
        args = [str(path) if a == "FILE" else a for a in argv]
        done = subprocess.run([sys.executable, "-m", "podium.tui.cli", *args],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode in (0, 1, 2, 3), (done.returncode, done.stderr)
        assert "Traceback" not in done.stderr + done.stdout, done.stderr
