"""Imports go one way: core never imports a UI, HTTP or llama.cpp; the CLI's entry
module imports nothing heavy, so `podium --help` stays instant."""

from __future__ import annotations

import json
import subprocess
import sys

CORE_MODULES = ["core.engine", "core.recipe", "core.plan", "core.store", "core.routing",
                "core.steps", "core.config", "core.inputs", "core.events", "core.provider"]


def loaded_after(imports: list[str]) -> set[str]:
    code = ("import json, sys\n" + "".join(f"import {m}\n" for m in imports) +
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return set(json.loads(out.stdout))


def test_core_imports_no_ui_http_or_llama() -> None:
    mods = loaded_after(CORE_MODULES)
    for banned in ("textual", "httpx", "llama_cpp", "tui", "providers", "rich", "llm"):
        assert not any(m == banned or m.startswith(banned + ".") for m in mods), banned


def test_cli_entry_imports_nothing_heavy() -> None:
    mods = loaded_after(["tui.cli"])
    for heavy in ("pydantic", "jinja2", "sqlite_utils", "llama_cpp", "textual", "httpx",
                  "core.engine", "rich"):
        assert heavy not in mods, heavy
