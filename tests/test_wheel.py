"""The wheel installs like a real tool: one `podium` import package carrying the shipped
recipes and the router's data, and a shipped recipe runs by name from any folder with
no source tree in sight."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("pyproject.toml", "README.md", "core", "providers", "tui", "recipes")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built offline from a copy of the tree (the clone stays clean)."""
    src = tmp_path_factory.mktemp("src")
    for name in SHIPPED:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(out), str(src)], check=True,
                   capture_output=True, text=True)
    (found,) = out.glob("podium-*.whl")
    return found


def test_wheel_holds_one_package_with_recipes_and_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"podium"}
    for needed in ("podium/recipes/document-pipeline.toml", "podium/recipes/samples/",
                   "podium/core/data/routing_examples.jsonl", "podium/core/steps/llm.py",
                   "podium/core/data/router_fit.json",
                   "podium/core/data/calibration_suite.jsonl",
                   "podium/tui/cli.py", "podium/providers/llamacpp.py"):
        assert any(n.startswith(needed) for n in names), needed


@pytest.mark.model
def test_installed_wheel_runs_a_shipped_recipe_by_name(wheel: Path, tmp_path: Path) -> None:
    """A fresh virtual environment gets the wheel and nothing of the source tree; its
    libraries come from this environment's site-packages, added as a plain path (so
    the editable install's finder, which a .pth file would start, stays off)."""
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "podium-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PODIUM_DB")}
    clean["PODIUM_HOME"] = str(tmp_path / "home")
    where = subprocess.run([str(python), "-c", "import podium.core, podium.recipes; "
                            "print(podium.core.__file__)"], cwd=elsewhere, env=clean,
                           check=True, capture_output=True, text=True).stdout
    assert where.startswith(site) and str(REPO) not in where
    assert not (Path(site) / "core").exists() and not (Path(site) / "tui").exists()
    ran = subprocess.run([str(env / "bin" / "podium"), "run", "document-pipeline", "--json"],
                         cwd=elsewhere, env=clean, capture_output=True, text=True,
                         timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert '"status": "succeeded"' in ran.stdout
    listed = subprocess.run([str(env / "bin" / "podium"), "recipe", "list"], cwd=elsewhere,
                            env=clean, capture_output=True, text=True, timeout=60)
    assert "triage" in listed.stdout and "support-reply" in listed.stdout
