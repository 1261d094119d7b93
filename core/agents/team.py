"""A team's loop: whose turn it is, when the team stops, and how different final
answers are settled. Each member's turn is the agent loop (`core.agents.loop`) on the
shared transcript; a turn ends when the member tells the team something (`say`),
passes control (`handoff`), gives a final answer, or runs out of turns.

The transcript holds the team's state, so a resumed team goes on where it was: a
`turn` entry opens a member's turn (who, the round, why them), an `end` entry closes
it (how), and `stop` says why the team stopped, with a `note` for a settled conflict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podium.core.agents import loop, wire
from podium.core.errors import BadResponse, StepError
from podium.core.models.provider import Message, Tool
from podium.core.recipe import templates
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.calls import parse_json
from podium.core.steps.ensemble import normalize, vote
from podium.core.store import Status
from podium.core.store.agents import AgentEntry

if TYPE_CHECKING:
    from podium.core.steps.team import TeamStep

OUTPUT_FIELDS = ("answer", "stop_reason", "rounds", "answers", "settlement")
SAY = Tool("say", "Tell the team something (your findings, a plan, a critique) and end "
           "your turn.", {"type": "object", "properties": {"message": {
               "type": "string", "maxLength": 1500}}, "required": ["message"]})


def handoff_tool(others: list[str]) -> Tool:
    """Pass control to another member, saying why."""
    return Tool("handoff", "Pass control to another member of the team, with the reason.",
                {"type": "object", "properties": {
                    "to": {"type": "string", "enum": others},
                    "reason": {"type": "string", "maxLength": 300}},
                 "required": ["to", "reason"]})


async def run_team(step: TeamStep, ctx: StepContext) -> StepResult:
    """Drive the team until it stops (or waits for a person), then settle its answer."""
    from podium.core.steps.agent import open_tools, system_prompt

    assert ctx.run is not None, "a team runs inside a run"
    log = loop.Transcript(ctx)
    if not log.entries:
        task = templates.render(step.instructions, ctx.values, what=f"{ctx.step_id}.instructions")
        log.add(AgentEntry("user", task))
    names = list(step.agents)
    roster = "\n".join(f"- {n}: {m.description}" for n, m in step.agents.items())
    stop = log.stopped("")
    while stop is None:
        turn = _open_turn(log)
        if turn is not None:
            member = inherit(step, step.agents[turn.speaker])
            control = {"say": SAY}
            if step.mode == "handoff":
                control["handoff"] = handoff_tool([n for n in names if n != turn.speaker])
            system = system_prompt(member, ctx.values, f"{ctx.step_id}.{turn.speaker}") \
                + f"\nYou are {turn.speaker}, in a team:\n{roster}\nWhen you have something " \
                "for the team, call say."
            async with open_tools(member, ctx) as tools:
                from podium.core.steps.agent import make_agent

                agent = make_agent(member, turn.speaker, system, tools, step.output_schema,
                                   ctx.run.recipe)
                agent.control = control
                ended = await loop.run(agent, ctx, log, since=turn.seq)
            if ended.how == "waiting":
                return StepResult(None, status=Status.WAITING, reason=ended.reason)
            log.add(AgentEntry("end", ended.reason, turn.speaker, tool_name=ended.tool,
                               arguments=ended.arguments))
            continue
        reason = await _why_stop(step, ctx, log)
        if reason is not None:
            stop = AgentEntry("stop", reason)
            log.add(stop)
            break
        speaker, why = await _next_speaker(step, ctx, log)
        log.add(AgentEntry("turn", why, speaker, arguments={"round": _rounds(step, log) + 1}))
    return StepResult(await _settle(step, ctx, log, stop.content), reason=stop.content)


def inherit(step: TeamStep, member: Any) -> Any:
    """A member with the team's model options where it sets none of its own (a team
    with `model = "x"` runs every member on x unless the member says otherwise)."""
    from podium.core.recipe.schema import ModelOptions

    taken = {k: getattr(step, k) for k in ModelOptions.model_fields
             if k in step.model_fields_set and k not in member.model_fields_set}
    return member.model_copy(update=taken) if taken else member


def _turns(log: loop.Transcript) -> list[AgentEntry]:
    return [e for e in log.entries if e.role == "turn"]


def _open_turn(log: loop.Transcript) -> AgentEntry | None:
    turns = _turns(log)
    if not turns:
        return None
    last = turns[-1]
    closed = any(e.role == "end" and e.speaker == last.speaker and e.seq > last.seq
                 for e in log.entries)
    return None if closed else last


def _rounds(step: TeamStep, log: loop.Transcript) -> int:
    """Rounds finished: every member once in round_robin, one turn otherwise."""
    done = sum(1 for e in log.entries if e.role == "end")
    return done // len(step.agents) if step.mode == "round_robin" else done


def _finals(log: loop.Transcript, after: int = 0) -> dict[str, Any]:
    """Each member's latest final answer (given after seq `after`)."""
    return {e.speaker: e.arguments for e in log.entries
            if e.role == "end" and e.tool_name == wire.FINAL and e.seq > after}


async def _why_stop(step: TeamStep, ctx: StepContext, log: loop.Transcript) -> str | None:
    """At a round's end: the reason the team stops now, or None."""
    ends = [e for e in log.entries if e.role == "end"]
    if not ends:
        return None
    per_round = len(step.agents) if step.mode == "round_robin" else 1
    if len(ends) % per_round:
        return None  # in the middle of a round
    rounds = len(ends) // per_round
    this_round = ends[-per_round:]
    given = [e.speaker for e in this_round if e.tool_name == wire.FINAL]
    if given:
        return f"final_answer by {', '.join(given)} in round {rounds}"
    _, tokens, cost = log.spent()
    if step.token_limit is not None and tokens >= step.token_limit:
        return f"used {tokens:,} tokens, past token_limit = {step.token_limit:,}"
    if step.cost_limit is not None and cost >= step.cost_limit:
        return f"spent ${cost:.4f}, past cost_limit = ${step.cost_limit:g}"
    if step.judge:
        done, why = await _judge_done(step, ctx, log)
        log.add(AgentEntry("note", f"judge after round {rounds}: "
                           + ("done" if done else "not done") + f" ({why})"))
        if done:
            return f"judge: the task is done ({why})"
    if rounds >= step.max_rounds:
        return f"reached max_rounds = {step.max_rounds}"
    return None


def _shared(log: loop.Transcript, last: int = 12) -> str:
    """The shared conversation as plain lines, for a selector or a judge."""
    lines = []
    for m in wire.conversation(log.entries, "podium", "", native=False)[1:]:
        lines.append(m.content if m.content.startswith("[") else f"[task] {m.content}")
    return "\n".join(lines[-last:])


async def _judge_done(step: TeamStep, ctx: StepContext, log: loop.Transcript) -> tuple[bool,
                                                                                        str]:
    schema = {"type": "object", "properties": {
        "done": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 200}},
        "required": ["done", "reason"]}
    msgs = [Message("system", "You judge whether a team has finished its task. Answer "
                    "with JSON: {\"done\": true|false, \"reason\": ...}."),
            Message("user", f"{_shared(log)}\n\nIs the task done?")]
    response = await ctx.caller.generate(step, msgs, schema=schema, model=step.judge_model,
                                         temperature=0.0, max_tokens=96, stream=False)
    value = parse_json(response.text, f"{ctx.step_id} judge")
    return bool(value.get("done")), str(value.get("reason", ""))


async def _next_speaker(step: TeamStep, ctx: StepContext, log: loop.Transcript) -> tuple[str,
                                                                                         str]:
    names = list(step.agents)
    turns = _turns(log)
    first = step.start or names[0]
    if not turns:
        return first, "opens the task"
    if step.mode == "round_robin":
        return names[(names.index(turns[-1].speaker) + 1) % len(names)], "next in turn"
    if step.mode == "handoff":
        end = next(e for e in reversed(log.entries) if e.role == "end")
        if end.tool_name == "handoff" and end.arguments:
            return str(end.arguments["to"]), f"handed off by {end.speaker}: " \
                f"{end.arguments.get('reason', '')}"
        return end.speaker, "keeps control (no handoff)"
    schema = {"type": "object", "properties": {
        "speaker": {"type": "string", "enum": names},
        "reason": {"type": "string", "maxLength": 200}}, "required": ["speaker", "reason"]}
    roster = "\n".join(f"- {n}: {m.description}" for n, m in step.agents.items())
    msgs = [Message("system", "You choose who speaks next in a team. Members:\n" + roster
                    + "\nAnswer with JSON: {\"speaker\": NAME, \"reason\": ...}."),
            Message("user", f"{_shared(log)}\n\nWho should speak next?")]
    response = await ctx.caller.generate(step, msgs, schema=schema, temperature=0.0,
                                         max_tokens=96, stream=False)
    value = parse_json(response.text, f"{ctx.step_id} selector")
    if value.get("speaker") not in names:
        raise BadResponse(f"the selector chose {value.get('speaker')!r}, not a member")
    return str(value["speaker"]), f"selected: {value.get('reason', '')}"


async def _settle(step: TeamStep, ctx: StepContext, log: loop.Transcript,
                  why: str) -> dict[str, Any]:
    """The team's answer: its members' final answers, settled by vote or judge where
    they differ; without any, what was said last."""
    from podium.core.steps.agent import answer_of

    finals = {name: answer_of(step.output_schema, args or {})
              for name, args in _finals(log).items()}
    out: dict[str, Any] = {"answer": None, "stop_reason": why, "rounds": _rounds(step, log),
                           "answers": finals, "settlement": None}
    done = next((e for e in log.entries if e.role == "note" and
                 e.content.startswith("settled")), None)
    if not finals:
        said = [m.content for m in wire.conversation(log.entries, "podium", "",
                                                     native=False)[1:]
                if m.content.startswith("[") and not m.content.startswith("[podium]")]
        if not said:
            raise StepError(f"the team stopped ({why}) and no member said anything",
                            "raise max_rounds, or give the members clearer roles")
        out["answer"] = said[-1].split("] ", 1)[-1]
        return out
    distinct = {normalize(a) for a in finals.values()}
    if len(distinct) == 1:
        out["answer"] = next(iter(finals.values()))
        return out
    if done is not None and done.arguments:  # settled before the process stopped
        out["settlement"] = done.arguments
        out["answer"] = done.arguments.get("answer")
        return out
    names, answers = list(finals), list(finals.values())
    if step.settle == "vote":
        tally = vote(answers)
        winner = names[answers.index(tally["answer"])]
        counts = sorted(tally["votes"].values(), reverse=True)
        tie = len(counts) > 1 and counts[0] == counts[1]
        settlement = {"method": "vote", "answer": tally["answer"], "chosen": winner,
                      "votes": tally["votes"],
                      "reasoning": f"{winner}'s answer had {counts[0]} of {len(answers)} "
                      "votes" + (" (a tie goes to the first given)" if tie else "")}
    else:
        settlement = await _judge_answers(step, ctx, log, names, answers)
    log.add(AgentEntry("note", f"settled by {settlement['method']}: {settlement['chosen']}'s "
                       f"answer ({settlement['reasoning']})", arguments=settlement))
    out["settlement"] = settlement
    out["answer"] = settlement["answer"]
    return out


async def _judge_answers(step: TeamStep, ctx: StepContext, log: loop.Transcript,
                         names: list[str], answers: list[Any]) -> dict[str, Any]:
    listing = "\n".join(f"{n}: {a}" for n, a in zip(names, answers, strict=True))
    task = next(e.content for e in log.entries if e.role == "user")
    schema = {"type": "object", "properties": {
        "best": {"type": "string", "enum": names},
        "reason": {"type": "string", "maxLength": 300}}, "required": ["best", "reason"]}
    msgs = [Message("system", "You settle a disagreement: pick the best answer to the task "
                    "and say why. Answer with JSON: {\"best\": NAME, \"reason\": ...}."),
            Message("user", f"Task: {task}\n\nAnswers:\n{listing}")]
    response = await ctx.caller.generate(step, msgs, schema=schema, model=step.judge_model,
                                         temperature=0.0, max_tokens=128, stream=False)
    value = parse_json(response.text, f"{ctx.step_id} judge")
    best = value.get("best")
    if best not in names:
        raise BadResponse(f"the judge chose {best!r}, not a member")
    return {"method": "judge", "answer": answers[names.index(best)], "chosen": best,
            "reasoning": str(value.get("reason", ""))}
