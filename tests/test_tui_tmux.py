"""The app in a real terminal, as a person meets it: `podium` with no arguments in tmux
at 80x24 and 200x50, keys sent, the screen read back."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PODIUM

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

RECIPE = '[steps.hello]\nkind = "template"\ntemplate = "hello from tmux"\n'


# A fixed COLUMNS or LINES (pytest's own, say) would override the terminal's real size.
CLEAN = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", "podium-test", *args], capture_output=True,
                          text=True, check=True, env=CLEAN).stdout


def screen_until(text: str, seconds: float = 15.0) -> str:
    deadline = time.monotonic() + seconds
    shown = ""
    while time.monotonic() < deadline:
        shown = tmux("capture-pane", "-p", "-t", "app")
        if text in shown:
            return shown
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared; the screen:\n{shown}")


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
def test_podium_opens_the_app_in_a_terminal(size: tuple[int, int], tmp_path: Path) -> None:
    home = tmp_path / "home"
    recipe = tmp_path / "hello.toml"
    recipe.write_text(RECIPE)
    env = dict(os.environ, PODIUM_HOME=str(home), TERM="xterm-256color")
    ran = subprocess.run([PODIUM, "run", str(recipe), "-q"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    width, height = size
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "app", "-x", str(width), "-y",
         str(height), "-e", f"PODIUM_HOME={home}", "-e", "TERM=xterm-256color", PODIUM)
    tmux("set-option", "-t", "app", "status", "off")
    tmux("set-option", "-t", "app", "window-size", "manual")
    tmux("resize-window", "-t", "app", "-x", str(width), "-y", str(height))
    try:
        screen_until("hello")  # the run's recipe name in the table
        shown = screen_until("Keys")  # and the footer, drawn a moment later
        assert "Podium" in shown and "succeeded" in shown
        title = shown.splitlines()[0]
        assert title.index("Podium") > width // 2 - 20  # drawn across the whole width
        assert "Keys" in shown and "New run" in shown  # the footer made it onto the screen
        tmux("send-keys", "-t", "app", "Enter")
        shown = screen_until("hello from tmux")  # the step's output in the run screen
        assert "template" in shown
        tmux("send-keys", "-t", "app", "Escape")
        time.sleep(0.5)
        tmux("send-keys", "-t", "app", "n")
        shown = screen_until("document-pipeline")
        lines = shown.splitlines()
        assert len(lines) <= height and all(len(line) <= width for line in lines)
        tmux("send-keys", "-t", "app", "Escape")
        time.sleep(0.5)
        tmux("send-keys", "-t", "app", "q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = subprocess.run(["tmux", "-L", "podium-test", "has-session", "-t", "app"],
                                   capture_output=True)
            if alive.returncode != 0:
                break  # q quit the app, and its session with it
            time.sleep(0.2)
        else:
            raise AssertionError("q did not quit the app")
    finally:
        subprocess.run(["tmux", "-L", "podium-test", "kill-server"], capture_output=True)
