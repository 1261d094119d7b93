"""An agent's or a team's transcript on the command line: one short line per message
and per tool call (who, what, how long, what went wrong), or all of it with --full."""

from __future__ import annotations

import json
from typing import Any

import click

from podium.tui.progress import preview


def _args(arguments: Any) -> str:
    return json.dumps(arguments, ensure_ascii=False) if arguments is not None else ""


def transcript_lines(entries: list[Any], *, full: bool = False) -> list[tuple[str, str | None]]:
    """(line, colour or None) for each entry worth showing; the system prompt is left
    out (it is in the recipe)."""
    width = 10_000 if full else 90
    out: list[tuple[str, str | None]] = []
    for e in entries:
        who = f"{e.speaker}: " if e.speaker else ""
        if e.role == "system":
            continue
        if e.role == "user":
            out.append((f"{who}user  {preview(e.content, width)}", None))
        elif e.role == "note":
            out.append((f"· {preview(e.content, width)}", "cyan"))
        elif e.role == "assistant":
            tokens = f"  [{e.input_tokens}+{e.output_tokens} tok]" \
                if e.input_tokens or e.output_tokens else ""
            if e.content.strip():
                out.append((f"{who}says  {preview(e.content, width)}{tokens}", None))
                tokens = ""
            for c in e.tool_calls:
                out.append((f"{who}→ {c['name']} {preview(_args(c['arguments']), width)}"
                            f"{tokens}", None))
                tokens = ""
            if tokens:
                out.append((f"{who}(no tool call){tokens}", "yellow"))
        elif e.role == "tool":
            took = f" {e.duration_ms:.0f} ms" if e.duration_ms is not None else ""
            cut = " (truncated)" if e.truncated else ""
            mark, colour = ("✗", "red") if e.error else ("←", None)
            out.append((f"{who}{mark} {e.tool_name}{took}{cut}: {preview(e.content, width)}",
                        colour))
        elif e.role == "turn":
            r = (e.arguments or {}).get("round")
            out.append((f"── {e.speaker}" + (f" (round {r})" if r else "")
                        + f": {preview(e.content, width)}", "cyan"))
        elif e.role == "end" and e.tool_name is None:
            out.append((f"{who}turn ended: {preview(e.content, width)}", "yellow"))
        elif e.role == "stop":
            out.append((f"{who}■ {e.content}", "green" if e.tool_name == "final_answer"
                        else "red"))
    return out


def print_transcript(entries: list[Any], *, full: bool = False, indent: str = "    ") -> None:
    """The transcript under its step in `podium show`."""
    calls = sum(len(e.tool_calls) for e in entries if e.role == "assistant")
    turns = sum(1 for e in entries if e.role == "assistant")
    click.secho(f"{indent}transcript: {turns} model turns, {calls} tool calls", dim=True)
    for line, colour in transcript_lines(entries, full=full):
        click.secho(indent + "  " + line.replace("\n", "\n" + indent + "    "), fg=colour)
