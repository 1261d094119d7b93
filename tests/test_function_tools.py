"""User tools from typed functions: the schema their hints and docstring make, the
hints that cannot make one (clear errors naming function and parameter), sync and
async calls through `call_tool`, and modules loaded by path or dotted name."""

from __future__ import annotations

import asyncio
import enum
import sys
from pathlib import Path
from typing import Any, Literal, Optional, TypedDict

import pytest
from pydantic import BaseModel, Field

from podium.core.errors import ConfigError
from podium.core.recipe import validate
from podium.core.tools.base import ToolDef, ToolOutcome, call_tool
from podium.core.tools.functions import parse_docstring, tool_from_function, tools_from_module


def call(tool: ToolDef, **arguments: Any) -> ToolOutcome:
    return asyncio.run(call_tool(tool, arguments))


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(TypedDict):
    city: str
    zip: int


class Order(BaseModel):
    item: str = Field(description="What was bought.")
    quantity: int = 1


def book(city: str, nights: int, budget: float, pets: bool = False,
         rooms: list[int] | None = None, kind: Literal["hotel", "hostel"] = "hotel",
         color: Color = Color.RED, note: Optional[str] = None) -> dict[str, Any]:  # noqa: UP045
    """Book a stay in a city.

    Longer text about booking that still describes the tool.

    Args:
        city: Where to stay.
        nights (int): How many nights; at
            least one.
        budget: Most to pay per night, in USD.
        pets: Whether pets come along.
        rooms: Room numbers wanted.
        kind: The sort of place.

    Returns:
        The booking.
    """
    return {"city": city, "nights": nights, "budget": budget, "pets": pets, "rooms": rooms,
            "kind": kind, "color": color.value, "note": note}


def test_hints_and_docstring_make_the_schema() -> None:
    tool = tool_from_function(book)
    assert tool.name == "book"
    assert tool.description == ("Book a stay in a city. Longer text about booking that "
                                "still describes the tool.")
    p = tool.parameters
    assert p["required"] == ["city", "nights", "budget"]
    assert p["additionalProperties"] is False
    props = p["properties"]
    assert props["city"] == {"type": "string", "description": "Where to stay."}
    assert props["nights"] == {"type": "integer",
                               "description": "How many nights; at least one."}
    assert props["budget"]["type"] == "number"
    assert props["pets"] == {"type": "boolean", "description": "Whether pets come along.",
                             "default": False}
    assert props["rooms"]["type"] == ["array", "null"]
    assert props["rooms"]["items"] == {"type": "integer"}
    assert props["kind"]["enum"] == ["hotel", "hostel"] and props["kind"]["type"] == "string"
    assert props["color"] == {"enum": ["red", "blue"], "type": "string"}
    assert props["note"] == {"type": ["string", "null"], "default": None}


def test_nested_typed_dicts_and_models_are_objects() -> None:
    def ship(to: Address, orders: list[Order]) -> str:
        """Ship orders."""
        return f"{len(orders)} to {to['city']} ({orders[0].item} x{orders[0].quantity})"

    tool = tool_from_function(ship)
    to = tool.parameters["properties"]["to"]
    assert to == {"type": "object", "properties": {"city": {"type": "string"},
                                                   "zip": {"type": "integer"}},
                  "additionalProperties": False, "required": ["city", "zip"]}
    item = tool.parameters["properties"]["orders"]["items"]
    assert item["required"] == ["item"]
    assert item["properties"]["item"]["description"] == "What was bought."
    out = call(tool, to={"city": "Oslo", "zip": 150}, orders=[{"item": "tea"}])
    assert out.result == "1 to Oslo (tea x1)"  # the model arrived as a pydantic object


def test_calls_validate_convert_and_report() -> None:
    tool = tool_from_function(book)
    out = call(tool, city="Rome", nights=2, budget=80, color="blue")
    assert out.ok and '"color": "blue"' in out.result and '"budget": 80' in out.result
    wrong = call(tool, city="Rome", nights="two", budget=1)
    assert wrong.error and "schema" in wrong.error and "$.nights" in wrong.error
    extra = call(tool, city="Rome", nights=1, budget=1, spa=True)
    assert extra.error and "unexpected field 'spa'" in extra.error
    # Every schema made here is one the shared validator reads: a valid call passes.
    assert validate.problems({"city": "x", "nights": 1, "budget": 2.5, "rooms": None,
                              "kind": "hostel"}, tool.parameters) == []


def test_async_functions_and_failures() -> None:
    async def slow_add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        await asyncio.sleep(0)
        return a + b

    def boom(x: str) -> str:
        """Fail."""
        raise RuntimeError(f"broke on {x}")

    assert call(tool_from_function(slow_add), a=1).result == "3"
    failed = call(tool_from_function(boom, name="boom-tool"), x="y")
    assert failed.error == "boom-tool failed: RuntimeError: broke on y"


def untyped(x, y: int) -> int:  # type: ignore[no-untyped-def]
    return y


def starred(*names: str) -> str:
    return ""


def keywords(**options: str) -> str:
    return ""


def anything(x: Any) -> str:
    return ""


def weird_union(x: int | list[int]) -> str:
    return ""


def bad_keys(x: dict[int, str]) -> str:
    return ""


class Thing:
    pass


def custom(x: Thing) -> str:
    return ""


def lying(x: int) -> str:
    """Do a thing.

    Args:
        x: a number.
        y: not a parameter at all.
    """
    return ""


@pytest.mark.parametrize(("fn", "said"), [
    (untyped, "untyped: parameter 'x' has no type hint"),
    (starred, "starred: parameter 'names' is *names"),
    (keywords, "keywords: parameter 'options' is **options"),
    (anything, "anything: parameter 'x': Any has no JSON Schema"),
    (weird_union, "weird_union: parameter 'x': int | list[int] is a union"),
    (bad_keys, "bad_keys: parameter 'x': a dict's keys must be str"),
    (custom, "custom: parameter 'x': Thing has no JSON Schema"),
    (lying, "lying: its docstring describes 'y', which is not one of its parameters"),
])
def test_functions_that_cannot_be_tools_say_why(fn: Any, said: str) -> None:
    with pytest.raises(ConfigError) as e:
        tool_from_function(fn)
    assert said in e.value.message
    assert e.value.hint


def test_bad_tool_name() -> None:
    with pytest.raises(ConfigError, match="cannot name a tool"):
        tool_from_function(book, name="book a room")


def test_docstring_sections() -> None:
    summary, args = parse_docstring("Do it.\n\nArgs:\n    a (int): first\n        more\n"
                                    "    b: second\n\nRaises:\n    c: not an arg\n")
    assert summary == "Do it." and args == {"a": "first more", "b": "second"}


MODULE = '''
from __future__ import annotations

from typing import Literal

__all__ = ["greet", "shout"]


def greet(name: str, style: Literal["plain", "warm"] = "plain") -> str:
    """Greet someone.

    Args:
        name: Who.
    """
    return ("Dear " if style == "warm" else "Hi ") + name


async def shout(text: str) -> str:
    """Shout."""
    return text.upper()


def helper(x) -> None:  # not in __all__: not a tool, untyped does not matter
    pass
'''


def test_tools_from_a_module_file_and_a_dotted_name(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mytools.py").write_text(MODULE)
    tools = tools_from_module("mytools.py", base=tmp_path)
    assert [t.name for t in tools] == ["greet", "shout"]
    assert call(tools[0], name="Ada", style="warm").result == "Dear Ada"
    assert call(tools[1], text="hey").result == "HEY"
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [t.name for t in tools_from_module("mytools")] == ["greet", "shout"]
    sys.modules.pop("mytools", None)


@pytest.mark.parametrize(("source", "spec", "said"), [
    (None, "missing_tools.py", "no tool module file"),
    (None, "no_such_module_here", "no tool module 'no_such_module_here'"),
    ("def f(x: int) -> int:\n    return x\n", "t.py", "has no __all__"),
    ("__all__ = ['g']\n", "t.py", "__all__ names 'g', which it does not define"),
    ("__all__ = ['X']\nX = 3\n", "t.py", "'X' in __all__ is not a function"),
    ("__all__ = []\n", "t.py", "lists no tools"),
    ("raise ValueError('bad config')\n", "t.py", "failed while importing: ValueError: "
     "bad config"),
    ("def f(:\n", "t.py", "failed while importing: SyntaxError"),
    ("__all__ = ['f']\ndef f(x) -> int:\n    return 1\n", "t.py",
     "parameter 'x' has no type hint"),
])
def test_bad_tool_modules_are_clear_errors(tmp_path: Path, source: str | None, spec: str,
                                           said: str) -> None:
    if source is not None:
        (tmp_path / spec).write_text(source)
    with pytest.raises(ConfigError) as e:
        tools_from_module(spec, base=tmp_path)
    assert said in e.value.message
