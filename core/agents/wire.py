"""How an agent's transcript becomes a model's conversation, and a model's answer
becomes tool calls, in the two ways models can call tools.

- **native** (remote models, `supports_tools`): tools go in the request; calls and
  results are the API's own tool messages.
- **grammar** (local models): each turn is one call whose JSON `schema` is a union of
  `{tool: <const name>, arguments: <that tool's schema>}` over every tool, final_answer
  included, so every answer parses and names a real tool with arguments of the right
  shape (the grammar guarantees it; the answer is still validated).
"""

from __future__ import annotations

import json
from typing import Any

from podium.core.models.provider import Message, Tool, ToolCall
from podium.core.recipe import validate
from podium.core.steps.calls import bounded
from podium.core.store.agents import AgentEntry

FINAL = "final_answer"
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"answer": {"type": "string", "maxLength": 2000}},
    "required": ["answer"], "additionalProperties": False}


def final_schema(schema: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """The arguments of `final_answer` for a step's output `schema` (an object schema
    as it is; anything else wrapped as `{answer: ...}`), and whether it was wrapped."""
    if schema is None:
        return ANSWER_SCHEMA, True
    if schema.get("type") == "object":
        return schema, False
    return {"type": "object", "properties": {"answer": schema}, "required": ["answer"]}, True


def final_tool(schema: dict[str, Any]) -> Tool:
    """The tool that ends the agent's work with its answer."""
    return Tool(FINAL, "Give your final answer and finish. Call it once you can answer.",
                schema)


# A local model's context is small: it sees the task and this many latest messages,
# each cut to MESSAGE_CHARS (the whole transcript stays stored).
LOCAL_WINDOW = 8
MESSAGE_CHARS = 800


def local_schema(tools: list[Tool], max_chars: int | None = None) -> dict[str, Any]:
    """One answer = one tool call: a union over every tool of its name and arguments.
    `max_chars` bounds every string, so an answer fits the call's max_tokens instead
    of being cut off mid-JSON."""
    return {"anyOf": [{
        "type": "object",
        "properties": {"tool": {"const": t.name},
                       "arguments": _cap(bounded(_object(t.parameters)), max_chars)},
        "required": ["tool", "arguments"], "additionalProperties": False,
    } for t in tools]}


def _cap(schema: Any, max_chars: int | None) -> Any:
    if max_chars is None or not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "maxLength" in out:
        out["maxLength"] = min(out["maxLength"], max_chars)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _cap(v, max_chars) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _cap(out["items"], max_chars)
    return out


def _object(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    out.setdefault("type", "object")
    out.setdefault("properties", {})
    return out


def local_instructions(tools: list[Tool]) -> str:
    """The tools as a local model reads them in its system message."""
    lines = ["Answer with one JSON object: {\"tool\": NAME, \"arguments\": {...}}. Tools:"]
    for t in tools:
        props = t.parameters.get("properties", {})
        args = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in props.items())
        lines.append(f"- {t.name}({args}): {t.description}")
    lines.append(f"Call {FINAL} when you know the answer.")
    return "\n".join(lines)


def parse_local(text: str, tools: dict[str, Tool], call_id: str) -> tuple[ToolCall | None,
                                                                        str | None]:
    """A local model's answer as one tool call, or None and what is wrong with it."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return None, f"your answer is not valid JSON ({e.msg}); answer with " \
                     "{\"tool\": NAME, \"arguments\": {...}}"
    if not isinstance(value, dict) or not isinstance(value.get("tool"), str):
        return None, "answer with {\"tool\": NAME, \"arguments\": {...}}"
    name = value["tool"]
    arguments = value.get("arguments")
    if not isinstance(arguments, dict):
        return None, f"{name}: arguments must be an object"
    return ToolCall(call_id, name, arguments), None


def argument_problems(tool: Tool, arguments: dict[str, Any]) -> list[str]:
    """Where `arguments` break the tool's schema (empty when they fit)."""
    return validate.problems(arguments, tool.parameters)


def conversation(entries: list[AgentEntry], speaker: str, system: str, *,
                 native: bool) -> list[Message]:
    """The transcript as `speaker` sees it: its own calls and results in full, what
    others said as user messages (a team's shared transcript), and Podium's notes."""
    out = [Message("system", system)]
    for e in entries:
        mine = e.speaker in ("", speaker)
        if e.role in ("system", "stop"):
            continue
        if e.role == "user" and mine:
            out.append(Message("user", e.content))
        elif e.role == "note":
            out.append(Message("user", f"[podium] {e.content}"))
        elif e.role == "assistant" and e.speaker == speaker:
            calls = tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in e.tool_calls)
            if native:
                out.append(Message("assistant", e.content, tool_calls=calls))
            else:
                out.append(Message("assistant", json.dumps(
                    {"tool": calls[0].name, "arguments": calls[0].arguments}) if calls
                    else e.content))
        elif e.role == "tool" and e.speaker == speaker:
            if native:
                out.append(Message("tool", e.content, tool_call_id=e.tool_call_id))
            else:
                out.append(Message("user", f"Result of {e.tool_name}: {e.content}"))
        elif e.role == "assistant" and e.speaker != speaker:
            spoken = _spoken(e)
            if spoken:
                out.append(Message("user", f"[{e.speaker}] {spoken}"))
    if native:
        return out
    return _window(out)


def _window(messages: list[Message]) -> list[Message]:
    """What fits a small local model: the system message, the task, and the latest
    messages, each cut short."""
    head, rest = messages[:2], messages[2:]
    if len(rest) > LOCAL_WINDOW:
        rest = [Message("user", f"[podium] {len(rest) - LOCAL_WINDOW} earlier messages "
                        "left out")] + rest[-LOCAL_WINDOW:]
    return head + [m if len(m.content) <= MESSAGE_CHARS else
                   Message(m.role, m.content[:MESSAGE_CHARS] + " […]") for m in rest]


def _spoken(e: AgentEntry) -> str:
    """What another member of a team said in a message: its text, what it told the team
    (`say`), its final answer, or its handoff."""
    parts = [e.content] if e.content.strip() else []
    for c in e.tool_calls:
        args = c.get("arguments") or {}
        if c["name"] == "say":
            parts.append(str(args.get("message", "")))
        elif c["name"] == FINAL:
            parts.append("final answer: " + json.dumps(args, ensure_ascii=False))
        elif c["name"] == "handoff":
            parts.append(f"hands off to {args.get('to')}: {args.get('reason', '')}")
    return "\n".join(p for p in parts if p)


def canonical(name: str, arguments: dict[str, Any]) -> str:
    """A call's identity for the loop guard: its name and its arguments as sorted JSON."""
    return name + json.dumps(arguments, sort_keys=True, ensure_ascii=False)
