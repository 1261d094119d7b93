"""Imports go one way: core never imports a UI, HTTP or llama.cpp, and has no import
cycle; the CLI's entry module imports nothing heavy, so `podium --help` stays instant."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import podium.core

CORE = Path(podium.core.__file__).resolve().parent
REPO = CORE.parent


def core_modules() -> list[str]:
    """Every module of core, found by walking its folder (none listed by hand)."""
    out = []
    for path in sorted(CORE.rglob("*.py")):
        parts = path.relative_to(CORE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(("podium", "core", *parts)))
    return out


def loaded_after(imports: list[str]) -> set[str]:
    code = ("import json, sys\n" + "".join(f"import {m}\n" for m in imports) +
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO.parent)
    return set(json.loads(out.stdout))


def test_walk_finds_every_core_group() -> None:
    mods = core_modules()
    assert len(mods) > 40
    for group in ("recipe", "run", "steps", "models", "review", "store"):
        assert f"podium.core.{group}" in mods


def test_core_imports_no_ui_http_or_llama() -> None:
    mods = loaded_after(core_modules())
    for banned in ("textual", "httpx", "llama_cpp", "podium.tui", "podium.providers", "rich",
                   "llm", "tui", "providers", "core"):
        assert not any(m == banned or m.startswith(banned + ".") for m in mods), banned


def test_cli_entry_imports_nothing_heavy() -> None:
    # The entry module and every command module it registers before showing --help.
    mods = loaded_after(["podium.tui.cli"] + [
        f"podium.tui.{p.stem}" for p in sorted((REPO / "tui").glob("cli_*.py"))])
    for heavy in ("pydantic", "jinja2", "sqlite_utils", "llama_cpp", "textual", "httpx",
                  "podium.core.run.engine", "rich", "asyncio"):
        assert heavy not in mods, heavy


# --- cycles, with the standard library only -------------------------------------------------


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The core modules `module` imports, at any depth of its code (an import inside a
    function still ties the two modules together). `if TYPE_CHECKING:` blocks are
    skipped: they never run."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in known and m != module}


def import_graph() -> dict[str, set[str]]:
    mods = core_modules()
    known = set(mods)
    paths = {}
    for m in mods:
        rel = Path(*m.split(".")[2:])
        file = CORE / rel / "__init__.py" if (CORE / rel).is_dir() \
            else CORE / rel.with_suffix(".py")
        paths[m] = file
    return {m: _imports(m, paths[m], known) for m in mods}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None (iterative, so a deep graph cannot overflow)."""
    state: dict[str, int] = {}
    for root in sorted(graph):
        if root in state:
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        path = [root]
        state[root] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            nxt = todo.pop()
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(graph.get(nxt, ()))))
    return None


def test_core_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_nothing_imports_the_repository_folders_by_their_bare_names() -> None:
    """`core.x` next to `podium.core.x` would load every module twice."""
    for folder in ("core", "providers", "tui", "tests", "bench"):
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level \
                    else []
                for name in names:
                    assert name.split(".")[0] not in ("core", "providers", "tui"), \
                        f"{path}: import {name}"
