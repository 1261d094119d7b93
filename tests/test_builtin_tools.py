"""The built-in tools, called the way an agent calls them (`call_tool`): files confined
to their roots (`..`, absolute paths and links that point out refused, special files
not read), the calculator's refusals of what is not arithmetic or too big, and the
shell: no shell syntax, a timeout that kills, a clean environment, approval "ask"
that a recipe cannot lower."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from podium.core.errors import ConfigError
from podium.core.tools.base import ToolDef, ToolOutcome, call_tool, with_approval
from podium.core.tools.calculator import calculator_tool
from podium.core.tools.files import list_dir_tool, read_file_tool
from podium.core.tools.shell import shell_tool


def call(tool: ToolDef, **arguments: Any) -> ToolOutcome:
    return asyncio.run(call_tool(tool, arguments))


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """root/ (allowed) beside secret/ (not): files, a sub-folder and links both ways."""
    root, secret = tmp_path / "root", tmp_path / "secret"
    (root / "sub").mkdir(parents=True)
    secret.mkdir()
    (root / "notes.txt").write_text("inside\n")
    (root / "sub" / "deep.md").write_text("# deep\n")
    (secret / "key.txt").write_text("TOP SECRET\n")
    (root / "out_link").symlink_to(secret / "key.txt")
    (root / "out_dir").symlink_to(secret)
    (root / "in_link").symlink_to(root / "notes.txt")
    return {"root": root, "secret": secret}


# --- read_file / list_dir -----------------------------------------------------------------


def test_read_file_reads_inside_its_roots(tree: dict[str, Path]) -> None:
    tool = read_file_tool([tree["root"]])
    assert call(tool, path="notes.txt").result == "inside\n"
    assert call(tool, path="sub/deep.md").result == "# deep\n"
    assert call(tool, path="sub/../notes.txt").result == "inside\n"  # stays inside
    assert call(tool, path=str(tree["root"] / "notes.txt")).result == "inside\n"
    assert call(tool, path="in_link").result == "inside\n"  # a link that stays inside


@pytest.mark.parametrize("path", [
    "../secret/key.txt", "sub/../../secret/key.txt", "/etc/passwd", "{secret}/key.txt",
    "out_link", "out_dir/key.txt", "./out_dir/../secret/key.txt",
])
def test_read_file_refuses_every_way_out(tree: dict[str, Path], path: str) -> None:
    outcome = call(read_file_tool([tree["root"]]), path=path.format(**tree))
    assert outcome.error is not None and "outside the folders" in outcome.error
    assert "TOP SECRET" not in outcome.result


def test_read_file_refuses_special_binary_missing_and_odd_paths(tree: dict[str, Path]) -> None:
    root = tree["root"]
    os.mkfifo(root / "pipe")
    (root / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    tool = read_file_tool([root])
    started = time.perf_counter()
    fifo = call(tool, path="pipe")
    assert fifo.error and "not a regular file" in fifo.error
    assert time.perf_counter() - started < 2  # opening a FIFO did not block
    assert "binary file" in (call(tool, path="blob.bin").error or "")
    assert "no such file" in (call(tool, path="nope.txt").error or "")
    assert "is a folder" in (call(tool, path="sub").error or "")
    assert "NUL" in (call(tool, path="a\x00b").error or "")
    assert "schema" in (call(tool).error or "")  # no path at all
    dev = call(read_file_tool(["/dev"]), path="zero")
    assert dev.error and "not a regular file" in dev.error


def test_read_file_caps_the_size_it_reads(tree: dict[str, Path]) -> None:
    (tree["root"] / "big.txt").write_text("x" * 5000)
    outcome = call(read_file_tool([tree["root"]], max_bytes=1000), path="big.txt")
    assert outcome.result.startswith("x" * 1000)
    assert outcome.result.endswith("[… file cut at 1,000 of 5,000 bytes]")


def test_several_roots_and_bad_roots(tree: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "only_here.txt").write_text("second root\n")
    tool = read_file_tool([tree["root"], other])
    assert call(tool, path="only_here.txt").result == "second root\n"
    assert call(tool, path="notes.txt").result == "inside\n"
    with pytest.raises(ConfigError, match="not a folder"):
        read_file_tool([tmp_path / "missing"])
    with pytest.raises(ConfigError, match="at least one folder"):
        list_dir_tool([])


def test_list_dir_shows_entries_and_marks_links_out(tree: dict[str, Path]) -> None:
    tool = list_dir_tool([tree["root"]])
    listing = call(tool).result.splitlines()
    assert listing[0] == ".: 5 entries"
    assert listing[1:] == ["in_link  7 bytes", "notes.txt  7 bytes",
                           "out_dir (link outside the allowed folders)",
                           "out_link (link outside the allowed folders)", "sub/"]
    assert call(tool, path="sub").result == "sub: 1 entries\ndeep.md  7 bytes"
    for escape in ("..", "out_dir", "/"):
        assert "outside the folders" in (call(tool, path=escape).error or "")
    assert "is a file" in (call(tool, path="notes.txt").error or "")


# --- calculator ---------------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "value"), [
    ("17 * 23", "391"), ("(17 * 23) / 4", "97.75"), ("-2 ** 2", "-4"), ("7 // 2", "3"),
    ("7 % 3", "1"), ("2 ** -2", "0.25"), ("sqrt(16) + log10(1000)", "7"),
    ("round(pi, 3)", "3.142"), ("max(1, 5, 3)", "5"), ("factorial(20)", "2432902008176640000"),
    ("2 ** 100", "1267650600228229401496703205376"), ("1e3 + 1", "1001"),
])
def test_calculator_computes(expression: str, value: str) -> None:
    outcome = call(calculator_tool(), expression=expression)
    assert outcome.ok and outcome.result == value


@pytest.mark.parametrize(("expression", "said"), [
    ("9**9**9", "too large to compute exactly"),
    ("10**5000", "too large"),
    ("(10**3000) * (10**3000)", "too large"),
    ("9.0 ** 9 ** 9", "too large"),
    ("exp(100000)", "too large"),
    ("factorial(100000)", "too large"),
    ("round(10**3000, -10**9)", "round takes"),
    ("1 / 0", "division by zero"),
    ("sqrt(-1)", "math domain error"),
    ("(-8) ** 0.5", "not a real number"),
    ("2 ^ 10", "'^' is not a power"),
    ("__import__('os').system('id')", "not arithmetic"),
    ("__import__('os')", "unknown name '__import__'"),
    ("().__class__", "not arithmetic"),
    ("open('/etc/passwd')", "unknown name 'open'"),
    ("x + 1", "unknown name 'x'"),
    ("[1, 2]", "not arithmetic"),
    ("'a' * 10", "not arithmetic"),
    ("True + 1", "not arithmetic"),
    ("lambda: 1", "not arithmetic"),
    ("1 +", "not an arithmetic expression"),
    ("(" * 210 + "1" + ")" * 210, "not an arithmetic expression"),  # too deep to parse
    ("1" * 501, "over 500 characters"),
    ("sqrt(x=4)", "unknown name"),
])
def test_calculator_refuses_quickly_and_clearly(expression: str, said: str) -> None:
    started = time.perf_counter()
    outcome = call(calculator_tool(), expression=expression)
    assert outcome.error is not None and said in outcome.error, outcome.error
    assert time.perf_counter() - started < 1


# --- shell --------------------------------------------------------------------------------


def test_shell_runs_one_program_without_shell_syntax(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello\n")
    tool = shell_tool(tmp_path)
    outcome = call(tool, command="cat a.txt")
    assert outcome.result == "exit code 0\nhello\n"
    # A shell would run `touch`; here `;`, `&&` and `$(...)` are arguments of echo.
    said = call(tool, command="echo hi; touch pwned && $(touch pwned2) > out").result
    assert said == "exit code 0\nhi; touch pwned && $(touch pwned2) > out\n"
    assert not any((tmp_path / n).exists() for n in ("pwned", "pwned2", "out"))
    failed = call(tool, command="ls no-such-file")
    assert failed.ok and failed.result.startswith("exit code 2") and "[stderr]" in failed.result
    assert "no program 'no-such-program'" in (call(tool, command="no-such-program").error
                                              or "")
    assert "cannot split" in (call(tool, command="echo 'unclosed").error or "")


def test_shell_keeps_secrets_out_and_caps_output(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    tool = shell_tool(tmp_path, max_bytes=100)
    env = call(tool, command="env").result
    assert "sk-secret-value" not in env and "PATH=" in env
    big = call(tool, command="seq 1 100000").result
    assert len(big) < 200 and big.endswith("more bytes not kept]")


def test_shell_timeout_kills_the_command_and_what_it_started(tmp_path: Path) -> None:
    tool = shell_tool(tmp_path, timeout_s=0.5)
    started = time.perf_counter()
    outcome = call(tool, command="sh -c 'sleep 30 & sleep 30'")
    assert outcome.error and "did not finish within 0.5 s" in outcome.error
    assert time.perf_counter() - started < 3


def test_shell_always_asks_and_cannot_be_lowered(tmp_path: Path) -> None:
    tool = shell_tool(tmp_path)
    assert tool.approval == "ask"
    with pytest.raises(ConfigError, match="cannot be set to approval = \"auto\""):
        with_approval(tool, "auto")
    assert with_approval(tool, "deny").approval == "deny"
    assert with_approval(calculator_tool(), "ask").approval == "ask"
    with pytest.raises(ConfigError, match="not a folder"):
        shell_tool(tmp_path / "missing")
