"""A run's inputs: defaults, required and unknown names, conversion from command-line
strings, and files read into `{path, name, text}`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from podium.core.errors import InputError
from podium.core.recipe import inputs
from podium.core.recipe import load as recipe
from podium.core.recipe.inputs import resolve_inputs
from podium.core.recipe.schema import Recipe

ROOT = Path(__file__).resolve().parent.parent
STEP = '\n[steps.s]\nkind = "template"\ntemplate = "x"\n'


def with_input(kind: str, extra: str = "") -> Recipe:
    """A recipe with one input `x` of type `kind`."""
    return recipe.loads(f'[inputs.x]\ntype = "{kind}"\n{extra}' + STEP, "r.toml")


# --- names and defaults ------------------------------------------------------------------


def test_defaults_and_optional_inputs() -> None:
    """Missing inputs take their default (false and 0 included); an optional input
    without a default is None; a given value wins over the default."""
    r = recipe.loads('''
[inputs.topic]
type = "string"
default = "tea"

[inputs.count]
type = "integer"
default = 0

[inputs.loud]
type = "boolean"
default = false

[inputs.note]
type = "string"
required = false
''' + STEP)
    assert resolve_inputs(r, {}) == {"topic": "tea", "count": 0, "loud": False, "note": None}
    assert resolve_inputs(r, {"topic": "coffee"})["topic"] == "coffee"


def test_required_input_missing() -> None:
    """A required input that is not given names itself and how to pass it."""
    r = recipe.loads('[inputs.topic]\ndescription = "what to write about"\n' + STEP)
    with pytest.raises(InputError) as info:
        resolve_inputs(r, {})
    assert info.value.message == "missing input 'topic' (what to write about)"
    assert info.value.hint == "pass it with -i topic=VALUE"


def test_unknown_input_suggests_the_right_name() -> None:
    """A misspelt input name is rejected with the closest declared name."""
    r = recipe.loads('[inputs.topic]\ndefault = "tea"\n' + STEP, "essay.toml")
    with pytest.raises(InputError) as info:
        resolve_inputs(r, {"topik": "x"})
    assert info.value.message == "recipe 'essay' has no input 'topik'"
    assert info.value.hint == "did you mean 'topic'?"


def test_unknown_input_with_no_close_name_lists_inputs() -> None:
    """With nothing close, the hint lists the recipe's inputs."""
    r = recipe.loads('[inputs.topic]\ndefault = "tea"\n' + STEP)
    with pytest.raises(InputError) as info:
        resolve_inputs(r, {"zzzzzz": "x"})
    assert info.value.hint == "inputs: topic"


# --- conversion --------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "given", "expected"), [
    ("integer", "42", 42),
    ("integer", 7, 7),
    ("number", "2.5", 2.5),
    ("number", "3", 3),
    ("boolean", "true", True),
    ("boolean", " Yes ", True),
    ("boolean", "1", True),
    ("boolean", "false", False),
    ("boolean", "no", False),
    ("boolean", "0", False),
    ("boolean", True, True),
    ("list", '["a", "b"]', ["a", "b"]),
    ("list", ["a"], ["a"]),
    ("object", '{"k": 1}', {"k": 1}),
    ("string", " 42 ", " 42 "),
])
def test_conversion_from_strings(kind: str, given: Any, expected: Any) -> None:
    """Command-line strings become the declared type; typed values pass through."""
    value = resolve_inputs(with_input(kind), {"x": given})["x"]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("kind", "given"), [
    ("integer", "4.5"),
    ("integer", "abc"),
    ("integer", "true"),
    ("number", "true"),
    ("number", "ten"),
    ("boolean", "maybe"),
    ("boolean", 2),
    ("list", '{"a": 1}'),
    ("list", "a,b"),
    ("object", "[1]"),
])
def test_bad_conversion(kind: str, given: Any) -> None:
    """A value that is not of the declared type is an InputError naming the input."""
    with pytest.raises(InputError) as info:
        resolve_inputs(with_input(kind), {"x": given})
    assert "input 'x'" in info.value.message


# --- files -------------------------------------------------------------------------------


def test_file_input_read_relative_to_base_dir(tmp_path: Path) -> None:
    """A file input is read (relative to `base_dir`) into {path, name, text}; trailing
    spaces and runs of blank lines go, paragraphs and indentation stay."""
    (tmp_path / "notes.txt").write_text("  first line  \n\n\nsecond line\n")
    value = resolve_inputs(with_input("file"), {"x": "notes.txt"}, base_dir=str(tmp_path))
    assert value["x"] == {"path": str((tmp_path / "notes.txt").resolve()),
                          "name": "notes.txt", "text": "  first line\n\nsecond line"}


def test_file_default_is_relative_to_the_recipe(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A shipped recipe's default file is found next to the recipe, whatever the cwd."""
    monkeypatch.chdir(tmp_path)
    r = recipe.load(ROOT / "recipes" / "document-pipeline.toml")
    doc = resolve_inputs(r, {})["document"]
    assert doc["name"] == "complaint.txt"
    assert doc["path"] == str((ROOT / "recipes" / "samples" / "complaint.txt").resolve())
    assert doc["text"]


def test_already_read_file_passes_through() -> None:
    """A resumed run's stored file value is kept, not read again."""
    stored = {"path": "/gone/a.txt", "name": "a.txt", "text": "kept"}
    assert resolve_inputs(with_input("file"), {"x": stored})["x"] == stored


def test_html_file_becomes_text(tmp_path: Path) -> None:
    """HTML is reduced to its visible text: tags, scripts and styles removed, entities
    decoded, block elements on their own lines."""
    page = tmp_path / "page.html"
    page.write_text("<html><head><style>p { color: red }</style>"
                    "<script>var secret = 1;</script></head><body>"
                    "<h1>Welcome</h1><p>Fish &amp; <b>chips</b></p><div>Open daily</div>"
                    "</body></html>")
    text = inputs.read_file("x", page)["text"]
    assert text == "Welcome\n\nFish & chips\n\nOpen daily"
    assert "secret" not in text and "color" not in text and "<" not in text


def test_html_line_breaks_separate_words(tmp_path: Path) -> None:
    """`<br>` (written without a slash, as it usually is) and table cells separate
    their text; words on either side are not glued together."""
    page = tmp_path / "page.html"
    page.write_text("<p>line one<br>line two</p><table><tr><td>cell a</td><td>cell b</td>"
                    "</tr></table>")
    text = inputs.read_file("x", page)["text"]
    assert "oneline" not in text
    assert "acell" not in text


def test_missing_file(tmp_path: Path) -> None:
    """A file that is not there is an InputError naming the input and the path."""
    with pytest.raises(InputError) as info:
        resolve_inputs(with_input("file"), {"x": "nope.txt"}, base_dir=str(tmp_path))
    assert info.value.message.startswith("input 'x': no such file:")
    assert "nope.txt" in info.value.message
    assert info.value.hint


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    """A directory given for a file input is rejected, not read."""
    with pytest.raises(InputError):
        resolve_inputs(with_input("file"), {"x": str(tmp_path)})


def test_binary_file_rejected(tmp_path: Path) -> None:
    """A binary file (NUL bytes near the start) is refused with a hint."""
    blob = tmp_path / "image.png"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(InputError) as info:
        resolve_inputs(with_input("file"), {"x": str(blob)})
    assert "looks binary" in info.value.message
    assert info.value.hint


def test_oversized_file_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file over the size limit is refused before it is read."""
    monkeypatch.setattr(inputs, "MAX_FILE_BYTES", 10)
    big = tmp_path / "big.txt"
    big.write_text("x" * 11)
    with pytest.raises(InputError) as info:
        resolve_inputs(with_input("file"), {"x": str(big)})
    assert "is over" in info.value.message
