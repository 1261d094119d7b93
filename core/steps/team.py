"""`team`: several agents on one shared transcript (`core.agents.team`): they speak in
turn (`round_robin`), a model picks who speaks next from their descriptions
(`selector`), or each passes control with a reason (`handoff`). The team stops at
`max_rounds`, when a member gives a final answer, or when a judge says the task is
done; different final answers are settled by `vote` or `judge`. The reason it stopped
and how a conflict was settled are stored with every message."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from podium.core.agents import team
from podium.core.errors import did_you_mean
from podium.core.recipe import templates
from podium.core.recipe.schema import ModelOptions, OutputSchema, Recipe, StepBase
from podium.core.steps.agent import AgentFields
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.registry import Problems, StepKind, register
from podium.core.tools import catalog


class Member(AgentFields):
    """One member of a team: an agent with a description the others (and a selector)
    read."""

    description: str = Field("", description="What this member does, for the selector "
                             "and the other members.")
    max_turns: int = Field(3, ge=1, le=50, description="Model calls in one of its turns.")
    final: bool = Field(True, description="May give the team's final answer; false: it "
                        "only tells the team things (say, handoff).")


class TeamStep(StepBase, ModelOptions):
    """Several agents on one task, one shared transcript."""

    kind: Literal["team"]
    instructions: str = Field(description="The task (template).")
    agents: dict[str, Member] = Field(min_length=2, description="The members, by name, "
                                      "in speaking order.")
    mode: Literal["round_robin", "selector", "handoff"] = "round_robin"
    start: str | None = Field(None, description="Who speaks first (default: the first "
                              "member).")
    max_rounds: int = Field(4, ge=1, le=100, description="Rounds before the team stops "
                            "(a round: every member once in round_robin, one turn "
                            "otherwise).")
    judge: bool = Field(False, description="After each round a model decides whether the "
                        "task is done.")
    judge_model: str | None = Field(None, description="The model that judges and settles "
                                    "(default: the step's).")
    settle: Literal["vote", "judge"] = Field("vote", description="How different final "
                                             "answers are settled.")
    token_limit: int | None = Field(None, ge=1, description="Tokens for the whole team.")
    cost_limit: float | None = Field(None, gt=0, description="USD for the whole team.")
    output_schema: OutputSchema = Field(None, alias="schema", description="JSON "
                                        "Schema of the final answer.")

    @field_validator("agents")
    @classmethod
    def _names_ok(cls, v: dict[str, Member]) -> dict[str, Member]:
        for name in v:
            if not name.replace("_", "").replace("-", "").isalnum() or name == "podium":
                raise ValueError(f"member name '{name}' must be letters, digits, - or _")
        return v


async def run_team(step: TeamStep, ctx: StepContext) -> StepResult:
    """Start or resume the team from its stored transcript."""
    return await team.run_team(step, ctx)


def check(recipe: Recipe, sid: str, step: TeamStep) -> tuple[set[str], Problems]:
    """Each member's tools under the recipe's [tools]; `start` names a member."""
    found: Problems = []
    needs: set[str] = set()
    for name, member in step.agents.items():
        found += catalog.check_names(recipe.tools, member.tools, dict(member.approval),
                                     ("steps", sid, "agents", name))
        for field in ("role", "system"):  # a member's templates may read earlier steps
            source = getattr(member, field)
            if not source:
                continue
            try:
                steps, _, _ = templates.references(templates.parse(source))
            except templates.TemplateSyntaxError as e:
                found.append((("steps", sid, "agents", name, field),
                              f"template syntax error: {e.message}", None))
                continue
            unknown = steps - set(recipe.steps)
            for s in sorted(unknown):
                found.append((("steps", sid, "agents", name, field), f"unknown step "
                              f"'steps.{s}'", did_you_mean(s, recipe.steps, prefix="steps.")))
            needs |= (steps & set(recipe.steps)) - {sid}
    if step.start is not None and step.start not in step.agents:
        found.append((("steps", sid, "start"), f"no member '{step.start}'",
                      did_you_mean(step.start, step.agents, "members: "
                                   + ", ".join(step.agents), always=True)))
    return needs, found


KIND = register(StepKind(
    "team", TeamStep, run_team, templates=("instructions",), calls_model=True,
    cacheable=False, check=check,
    fields=lambda step, recipe: frozenset(team.OUTPUT_FIELDS),
))
