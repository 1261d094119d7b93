"""`agent`: a model with a role, instructions and tools, in a loop until it calls
`final_answer` (`core.agents.loop`), under `max_turns`, token and cost limits.
Every message and tool call is stored with the step; a killed agent resumes from its
transcript without making a finished call again."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from podium.core.agents import loop, wire
from podium.core.errors import StepError
from podium.core.recipe import templates
from podium.core.recipe.schema import ModelOptions, OutputSchema, Recipe, StepBase
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.registry import Problems, StepKind, register, schema_fields
from podium.core.steps.values import json_value
from podium.core.store.agents import AgentEntry
from podium.core.tools import catalog

Policy = Literal["auto", "ask", "deny"]
REVIEWER = "A reviewer rejected your final answer"


class AgentFields(ModelOptions):
    """What an agent is, alone or in a team: role, tools, limits."""

    role: str = Field("", description="Who the agent is (template), e.g. \"You are a "
                      "careful support agent.\"")
    tools: list[str] = Field(default_factory=list, description="Tools it may call: "
                             "built-in names, mcp.NAME, or your module's.")
    approval: dict[str, Policy] = Field(default_factory=dict, description="Per tool: auto "
                                        "(run), ask (a person approves first) or deny.")
    max_turns: int = Field(8, ge=1, le=200, description="Model calls before it stops.")
    token_limit: int | None = Field(None, ge=1, description="Tokens (in and out) before "
                                    "it stops.")
    cost_limit: float | None = Field(None, gt=0, description="USD before it stops.")


class AgentStep(StepBase, AgentFields):
    """A model with tools in a loop until it calls final_answer."""

    kind: Literal["agent"]
    instructions: str = Field(description="The task (template).")
    output_schema: OutputSchema = Field(None, alias="schema", description="JSON "
                                        "Schema of the final answer.")


def system_prompt(fields: AgentFields, values: dict[str, Any], where: str) -> str:
    """The agent's system message: its role and `system` text, then how it works."""
    said = [templates.render(text, values, what=f"{where}.{name}")
            for name, text in (("role", fields.role), ("system", fields.system)) if text]
    return "".join(s + "\n" for s in said) + "Work step by step with the tools. When you " \
        f"know the answer, call {wire.FINAL}."


def make_agent(fields: AgentFields, name: str, system: str, tools: catalog.Catalog,
               schema: dict[str, Any] | None, recipe: Recipe) -> loop.Agent:
    """The loop's agent from a step's (or a team member's) fields."""
    final, _ = wire.final_schema(schema)
    return loop.Agent(name, system, fields, tools.tools, final, fields.max_turns,
                      fields.token_limit, fields.cost_limit, recipe.tools.result_chars)


def open_tools(fields: AgentFields, ctx: StepContext) -> Any:
    """The step's tools, open for an `async with`."""
    run = ctx.run
    assert run is not None, "an agent runs inside a run"
    recipe = run.recipe
    base = Path(recipe.path).parent if recipe.path != "<recipe>" else Path.cwd()
    return catalog.open_catalog(recipe.tools, base, fields.tools, dict(fields.approval),
                                store=run.store, source=run.tool_sources)


def answer_of(schema: dict[str, Any] | None, arguments: dict[str, Any]) -> Any:
    """The step's output from final_answer's arguments (unwrapped where it was wrapped)."""
    _, wrapped = wire.final_schema(schema)
    return arguments.get("answer") if wrapped else arguments


async def run_agent(step: AgentStep, ctx: StepContext) -> StepResult:
    """Start or resume the agent from its stored transcript."""
    assert ctx.run is not None, "an agent runs inside a run"
    log = loop.Transcript(ctx)
    system = system_prompt(step, ctx.values, ctx.step_id)
    if not log.entries:
        task = templates.render(step.instructions, ctx.values, what=f"{ctx.step_id}.instructions")
        log.add(AgentEntry("system", system), AgentEntry("user", task))
    since = _take_feedback(ctx, log)
    stop = log.stopped("")
    if stop is not None and stop.seq > since:  # it ended before the process did
        return _result(step, stop)
    async with open_tools(step, ctx) as tools:
        agent = make_agent(step, "", system, tools, step.output_schema, ctx.run.recipe)
        ended = await loop.run(agent, ctx, log, since=since)
    if ended.how == "waiting":
        from podium.core.store import Status

        return StepResult(None, status=Status.WAITING, reason=ended.reason)
    entry = AgentEntry("stop", ended.reason, "", tool_name=ended.tool,
                       arguments=ended.arguments if ended.how == "final" else None)
    log.add(entry)
    return _result(step, entry)


def _result(step: AgentStep, stop: AgentEntry) -> StepResult:
    if stop.tool_name == wire.FINAL and stop.arguments is not None:
        return StepResult(answer_of(step.output_schema, stop.arguments), reason=stop.content)
    raise StepError(f"the agent stopped: {stop.content}",
                    "see its transcript with `podium show RUN`; raise the limit, or "
                    "change the instructions")


def _take_feedback(ctx: StepContext, log: loop.Transcript) -> int:
    """A reviewer's rejections not yet in the transcript become user messages; the agent
    then works on from there with its turns counted afresh. Returns the seq turns count
    from."""
    told = [e for e in log.entries if e.role == "user" and e.content.startswith(REVIEWER)]
    for _, said in ctx.feedback[len(told):]:
        log.add(AgentEntry("user", f"{REVIEWER}" + (f": {said}" if said else ".")
                           + f" Work on it, then call {wire.FINAL} again."))
        told.append(log.entries[-1])
    return told[-1].seq if told else 0


def check(recipe: Recipe, sid: str, step: AgentStep) -> tuple[set[str], Problems]:
    """Tool names and approvals under the recipe's [tools]."""
    return set(), catalog.check_names(recipe.tools, step.tools, dict(step.approval),
                                      ("steps", sid))


def parse_value(step: AgentStep, text: str, original: Any, where: str) -> Any:
    """A hand edit of the answer (JSON where the step has a schema), or the arguments
    of a tool call a person edits in a review (a JSON object)."""
    if step.output_schema is None and not isinstance(original, dict):
        return text
    value = json_value(text, where)
    if isinstance(original, dict) and not isinstance(value, dict):
        from podium.core.errors import ReviewError

        raise ReviewError(f"{where}: give a JSON object", "e.g. {\"command\": \"ls\"}")
    return value


KIND = register(StepKind(
    "agent", AgentStep, run_agent, templates=("instructions", "role", "system"),
    calls_model=True, cacheable=False, check=check, parse_value=parse_value,
    fields=lambda step, recipe: schema_fields(step.output_schema),
))
