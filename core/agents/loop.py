"""One agent's loop: ask the model with the transcript and the tools, run the calls it
makes through `call_tool`, feed the results back, until it calls `final_answer`.

Each message is committed as it happens (`core/store/agents.py`), and the loop always
starts by reading the stored transcript: a call that has its result is never made
again, so a killed agent (or one that waited for a person) carries on where it was.
It stops, with the reason stored, at its turn, token or cost limit, or when it calls
the same tool with the same arguments again (the loop guard). A tool whose approval
is `ask` puts the call in the review queue and the step waits; `deny` refuses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from podium.core.agents import wire
from podium.core.events import ReviewWaiting
from podium.core.models.provider import Tool, ToolCall
from podium.core.recipe.schema import ModelOptions
from podium.core.steps.base import StepContext
from podium.core.store import Status
from podium.core.store.agents import AgentEntry
from podium.core.tools.base import MAX_RESULT_CHARS, ToolDef, call_tool

NUDGE = f"Call one of the tools; when you can answer, call {wire.FINAL}."


@dataclass
class Agent:
    """One agent: who it is, how it calls a model, what it may use, and its limits.
    `control` are tools its caller handles (a team's `say` and `handoff`): calling one
    ends the agent's turn."""

    name: str
    system: str
    options: ModelOptions
    tools: dict[str, ToolDef]
    final: dict[str, Any]  # the arguments schema of final_answer
    max_turns: int = 8
    token_limit: int | None = None
    cost_limit: float | None = None
    result_chars: int = MAX_RESULT_CHARS
    control: dict[str, Tool] = field(default_factory=dict)

    def offered(self) -> list[Tool]:
        """Every tool the model sees, final_answer last."""
        return [t.describe() for t in self.tools.values()] + list(self.control.values()) \
            + [wire.final_tool(self.final)]


@dataclass
class Ended:
    """How a stretch of the loop ended: a final answer, a control tool (teams), a stop
    at a limit or the loop guard, or a wait for a person."""

    how: Literal["final", "control", "stopped", "waiting"]
    reason: str
    tool: str | None = None
    arguments: dict[str, Any] | None = None


class Transcript:
    """A step's stored transcript, read once and appended to as the agent goes."""

    def __init__(self, ctx: StepContext) -> None:
        assert ctx.run is not None, "an agent runs inside a run"
        self.store = ctx.run.store
        self.run_id, self.step_id = ctx.run_id, ctx.step_id
        self.entries: list[AgentEntry] = self.store.messages(self.run_id, self.step_id)

    def add(self, *entries: AgentEntry) -> None:
        """Commit entries, then keep them (durable before the agent goes on)."""
        self.store.add_messages(self.run_id, self.step_id, list(entries))
        self.entries.extend(entries)

    def calls_made(self, speaker: str) -> dict[str, int]:
        """Canonical call -> the seq of the message that made it, for the loop guard."""
        out: dict[str, int] = {}
        for e in self.entries:
            if e.role == "assistant" and e.speaker == speaker:
                for c in e.tool_calls:
                    out.setdefault(wire.canonical(c["name"], c["arguments"]), e.seq)
        return out

    def spent(self, speaker: str | None = None, since: int = 0) -> tuple[int, int, float]:
        """(model turns, tokens, USD) of `speaker` (None: everyone) after seq `since`."""
        turns = tokens = 0
        cost = 0.0
        for e in self.entries:
            if e.role == "assistant" and e.seq > since and speaker in (None, e.speaker):
                turns += 1
                tokens += e.input_tokens + e.output_tokens
                cost += e.cost
        return turns, tokens, cost

    def pending(self, speaker: str) -> tuple[AgentEntry, list[dict[str, Any]]] | None:
        """The speaker's last model message and those of its calls with no result yet."""
        last = next((e for e in reversed(self.entries) if e.speaker == speaker and
                     e.role in ("assistant", "stop")), None)
        if last is None or last.role != "assistant" or not last.tool_calls:
            return None
        answered = {e.tool_call_id for e in self.entries if e.role == "tool" and
                    e.seq > last.seq}
        left = [c for c in last.tool_calls if c["id"] not in answered]
        return (last, left) if left else None

    def stopped(self, speaker: str) -> AgentEntry | None:
        """The stop entry of `speaker`, if it stopped."""
        return next((e for e in self.entries if e.role == "stop" and e.speaker == speaker),
                    None)


async def run(agent: Agent, ctx: StepContext, log: Transcript, *, since: int = 0) -> Ended:
    """Drive `agent` until it answers, hands control back, stops or waits. Turn limits
    count model messages after seq `since` (a team member's current turn); tokens and
    cost count the whole transcript of this agent."""
    while True:
        open_calls = log.pending(agent.name)
        if open_calls is not None:
            ended = await _run_calls(agent, ctx, log, *open_calls)
            if ended is not None:
                return ended
            continue
        limit = _over_limit(agent, log, since)
        if limit is not None:
            return Ended("stopped", limit)
        ended = await _turn(agent, ctx, log)
        if ended is not None:
            return ended


def _over_limit(agent: Agent, log: Transcript, since: int) -> str | None:
    turns, _, _ = log.spent(agent.name, since)
    _, tokens, cost = log.spent(agent.name)
    if turns >= agent.max_turns:
        return f"reached max_turns = {agent.max_turns} without a final answer"
    if agent.token_limit is not None and tokens >= agent.token_limit:
        return f"used {tokens:,} tokens, past token_limit = {agent.token_limit:,}"
    if agent.cost_limit is not None and cost >= agent.cost_limit:
        return f"spent ${cost:.4f}, past cost_limit = ${agent.cost_limit:g}"
    return None


async def _turn(agent: Agent, ctx: StepContext, log: Transcript) -> Ended | None:
    """One model call; its message (and the calls it makes) committed."""
    offered = agent.offered()
    by_name = {t.name: t for t in offered}
    local_system = agent.system + "\n\n" + wire.local_instructions(offered)
    msgs = wire.conversation(log.entries, agent.name, local_system, native=False)
    provider, _ = ctx.caller.route(agent.options, msgs)
    ctx.caller.decisions.pop()  # generate routes again; this only asked which way
    native = bool(provider.supports_tools)
    if native:
        msgs = wire.conversation(log.entries, agent.name, agent.system, native=True)
    usage0, cost0 = ctx.caller.usage, ctx.caller.cost
    if native:
        response = await ctx.caller.generate(agent.options, msgs, tools=tuple(offered),
                                             stream=False)
        calls = list(response.tool_calls)
        problem = None if calls else NUDGE
    else:
        response = await ctx.caller.generate(agent.options, msgs,
                                             schema=wire.local_schema(
                                                 offered, 2 * agent.options.max_tokens),
                                             stream=False)
        call, problem = wire.parse_local(response.text, by_name, f"call_{len(log.entries) + 1}")
        if problem and response.finish_reason == "length":
            problem = f"your answer was cut off at max_tokens = {agent.options.max_tokens}; " \
                      "answer shorter"
        calls = [call] if call is not None else []
    used = ctx.caller.usage
    entry = AgentEntry(
        "assistant", response.text if not calls or native else "", agent.name,
        tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls],
        input_tokens=used.input_tokens - usage0.input_tokens,
        output_tokens=used.output_tokens - usage0.output_tokens,
        cost=ctx.caller.cost - cost0)
    seen = log.calls_made(agent.name)
    repeated = next((c for c in calls if c.name != wire.FINAL and
                     wire.canonical(c.name, c.arguments) in seen), None)
    if repeated is not None:
        reason = (f"loop guard: called {repeated.name} again with the same arguments "
                  f"{json.dumps(repeated.arguments, ensure_ascii=False)}")
        log.add(entry, *_unanswered(agent.name, calls, "not run: " + reason))
        return Ended("stopped", reason)
    if problem is not None:
        log.add(entry, AgentEntry("user", problem, agent.name))
        return None
    log.add(entry)
    return None


def _unanswered(speaker: str, calls: list[ToolCall], why: str) -> list[AgentEntry]:
    return [AgentEntry("tool", why, speaker, tool_call_id=c.id, tool_name=c.name,
                       arguments=c.arguments, error=why) for c in calls]


async def _run_calls(agent: Agent, ctx: StepContext, log: Transcript, message: AgentEntry,
                     calls: list[dict[str, Any]]) -> Ended | None:
    """Run the calls of `message` that have no result yet, in order, each result
    committed as it arrives."""
    for index, c in enumerate(message.tool_calls):
        if c not in calls:
            continue
        name, arguments, call_id = c["name"], c["arguments"], c["id"]
        if name == wire.FINAL or name in agent.control:
            schema = agent.final if name == wire.FINAL else agent.control[name].parameters
            wrong = wire.argument_problems(Tool(name, "", schema), arguments)
            if wrong:
                log.add(_result(agent, c, f"error: {name}: the arguments do not fit its "
                                f"schema: {'; '.join(wrong[:3])}", error="bad arguments"))
                continue
            rest = [x for x in message.tool_calls[index + 1:] if x in calls]
            log.add(_result(agent, c, "done"), *[
                _result(agent, x, f"not run: {name} ended the turn", error="not run")
                for x in rest])
            return Ended("final" if name == wire.FINAL else "control",
                         f"{name} after {_turns(log.spent(agent.name)[0])}", name, arguments)
        tool = agent.tools.get(name)
        if tool is None:
            known = ", ".join(list(agent.tools) + [wire.FINAL])
            log.add(_result(agent, c, f"error: unknown tool '{name}'; tools: {known}",
                            error="unknown tool"))
            continue
        if tool.approval == "deny":
            log.add(_result(agent, c, f"error: {name} is not allowed here (approval = "
                            "\"deny\"); do without it", error="denied by the recipe"))
            continue
        if tool.approval == "ask":
            decided = _approval(ctx, agent, message, index, c)
            if decided is None:
                return Ended("waiting", f"waiting for a person to approve {name}")
            if isinstance(decided, str):
                log.add(_result(agent, c, decided, error="denied by a person"))
                continue
            arguments = decided
        if ctx.caller.on_note is not None:  # what the step is doing while no text streams
            who = f"{agent.name}: " if agent.name else ""
            ctx.caller.on_note(f"{who}calling {name} {json.dumps(arguments)[:60]}")
        outcome = await call_tool(tool, arguments, agent.result_chars)
        log.add(AgentEntry("tool", outcome.result, agent.name, tool_call_id=call_id,
                           tool_name=name, arguments=arguments, error=outcome.error,
                           truncated=outcome.truncated,
                           duration_ms=round(outcome.duration_s * 1000, 3)))
    return None


def _result(agent: Agent, call: dict[str, Any], text: str, *,
            error: str | None = None) -> AgentEntry:
    return AgentEntry("tool", text, agent.name, tool_call_id=call["id"],
                      tool_name=call["name"], arguments=call["arguments"], error=error)


def _approval(ctx: StepContext, agent: Agent, message: AgentEntry, index: int,
              call: dict[str, Any]) -> dict[str, Any] | str | None:
    """A person's answer on an `ask` call: the arguments to run it with, the refusal the
    agent reads, or None while it waits (the question is asked the first time)."""
    assert ctx.run is not None
    store = ctx.run.store
    item = message.seq * 100 + index  # one review per call of the transcript
    asked = [r for r in store.reviews(status=None, run_id=ctx.run_id, step_id=ctx.step_id)
             if r.kind == "tool" and r.item == item]
    if not asked:
        who = f"agent '{agent.name}'" if agent.name else "the agent"
        store.add_review(ctx.run_id, ctx.step_id, ctx.step_id, kind="tool", item=item,
                         original=call["arguments"],
                         instructions=f"{who} asks to call {call['name']} with these "
                         "arguments. Approve, edit the arguments (JSON), or reject with "
                         "the reason the agent will read.")
        ctx.run.emit(ReviewWaiting(ctx.run_id, ctx.step_id, ctx.step_id, "tool"))
        return None
    r = asked[-1]
    if r.status == Status.PENDING:
        return None
    if r.status == "approved":
        return dict(call["arguments"])
    if r.status == "edited":
        return r.decided if isinstance(r.decided, dict) else dict(call["arguments"])
    why = f": {r.feedback}" if r.feedback else ""
    return f"error: a person ({r.decided_by}) denied this call{why}"


def _turns(n: int) -> str:
    return f"{n} turn" if n == 1 else f"{n} turns"
