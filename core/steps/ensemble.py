"""`ensemble`: the same question to several models (or one model several times) in
parallel, then a majority `vote`, a `judge` that picks the best, or a `merge`."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter
from typing import Any, Literal

from pydantic import Field

from podium.core.errors import BadResponse, StepError
from podium.core.models.provider import Message
from podium.core.recipe import validate
from podium.core.recipe.schema import ModelOptions, OutputSchema, StepBase
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.calls import bounded, constrained_label, label_probs, messages, parse_json
from podium.core.steps.durable import digest, each_item
from podium.core.steps.registry import Items, StepKind, register
from podium.core.steps.values import fail_on, json_value, label_value


class EnsembleStep(StepBase, ModelOptions):
    """Ask several models (or one model `n` times) the same thing in parallel, then
    combine: `vote` (majority), `judge` (a model picks the best) or `merge` (a model
    writes one answer from all)."""

    kind: Literal["ensemble"]
    prompt: str
    models: list[str] = Field(default_factory=list, description="Models to ask; empty: the "
                              "step's model n times.")
    n: int = Field(3, ge=1, le=32)
    method: Literal["vote", "judge", "merge"] = "vote"
    labels: list[str] | None = Field(None, description="Constrain each answer to one label.")
    output_schema: OutputSchema = Field(None, alias="schema")
    temperature: float = Field(0.8, ge=0, le=2)

    judge_model: str | None = None
    concurrency: int = Field(4, ge=1, le=64)




def normalize(answer: Any) -> str:
    """The form answers are compared in: lower case, single spaces, no end punctuation."""
    if not isinstance(answer, str):
        return json.dumps(answer, ensure_ascii=False, separators=(",", ":"), default=str)
    text = re.sub(r"\s+", " ", answer.strip().lower())
    return text.rstrip(".!?;:")


def _sample(probs: list[float], temperature: float, seed: int) -> int:
    """Draw one index from `probs` sharpened or flattened by `temperature`."""
    if temperature <= 0:
        return max(range(len(probs)), key=probs.__getitem__)
    weights = [p ** (1 / temperature) for p in probs]
    return random.Random(seed).choices(range(len(probs)), weights=weights)[0]


def _messages(step: EnsembleStep, ctx: StepContext) -> list[Message]:
    msgs = messages(step.system, step.prompt, ctx.values, ctx.step_id)
    labels = list(step.labels or [])
    if labels:  # the same shape as `classify`, which calibration relies on
        msgs = [Message("system", (msgs[0].content + "\n" if msgs[0].role == "system" else "")
                        + "Classify the text into exactly one of these labels: "
                        + ", ".join(labels) + ".\nAnswer with the label only."), msgs[-1]]
    return ctx.with_feedback(msgs)


def members(step: EnsembleStep) -> list[str]:
    """The model of each member ("" for the step's routed model)."""
    return step.models or [step.model or ""] * step.n


async def ask_member(step: EnsembleStep, ctx: StepContext, i: int, msgs: list[Message],
                     distributions: dict[str, asyncio.Task[list[float] | None]]) -> Any:
    """Member `i`'s answer. One model asked n times gives n samples of one label
    distribution: it is scored once (calibrated), then each member's vote is drawn
    with its own seed."""
    model = members(step)[i]
    labels = list(step.labels or [])
    seed = (step.seed if step.seed is not None else 1000) + i
    if labels:
        if model not in distributions:
            distributions[model] = asyncio.ensure_future(
                label_probs(step, msgs, labels, ctx, model=model or None))
        probs = await distributions[model]
        if probs is not None:
            return labels[_sample(probs, step.temperature, seed)]
        return await constrained_label(step, msgs, labels, ctx, model=model or None,
                                       seed=seed)
    response = await ctx.caller.generate(step, msgs, schema=bounded(step.output_schema),
                                  model=model or None, seed=seed, stream=False)
    if step.output_schema is not None:
        return parse_json(response.text, f"{ctx.step_id} member {i + 1}")
    return response.text.strip()


async def _ask_all(step: EnsembleStep, ctx: StepContext) -> list[Any]:
    msgs = _messages(step, ctx)
    distributions: dict[str, asyncio.Task[list[float] | None]] = {}

    async def ask(i: int, model: str, own: StepContext) -> Any:
        return await ask_member(step, own, i, msgs, distributions)

    # Each member's answer is kept as it comes (a resume asks only the others); a
    # member is named by its model, its seed by the step's definition.
    results = await each_item(ctx, members(step), ask, concurrency=step.concurrency,
                              calls_model=True, errors="keep",
                              digest_of=lambda i, model: digest(model))
    answers = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if not answers:
        raise errors[0]
    # Half the members failing is noise; losing more than half is not a vote.
    count = len(results)
    if len(answers) * 2 < count:
        raise StepError(f"only {len(answers)} of {count} members "
                        f"answered ({errors[0]})")
    return answers


async def redo_member(step: EnsembleStep, ctx: StepContext, i: int) -> Any:
    """Ask member `i` again (with the step's feedback, if any)."""
    return await ask_member(step, ctx, i, _messages(step, ctx), {})


def vote(answers: list[Any]) -> dict[str, Any]:
    """Majority of normalized answers; a tie goes to the answer given first."""
    keys = [normalize(a) for a in answers]
    counts = Counter(keys)
    best_key = max(counts, key=lambda k: (counts[k], -keys.index(k)))
    winner = answers[keys.index(best_key)]
    return {"answer": winner, "votes": dict(counts.most_common()), "answers": answers,
            "agreement": round(counts[best_key] / len(answers), 3)}


async def run_ensemble(step: EnsembleStep, ctx: StepContext) -> StepResult:
    """Ask every member, then combine by `step.method`."""
    return StepResult(await combine(step, ctx, await _ask_all(step, ctx)))


async def combine(step: EnsembleStep, ctx: StepContext, answers: list[Any]) -> dict[str, Any]:
    """One output from the members' answers, by `step.method`."""
    if step.method == "vote" or len(answers) == 1:
        return vote(answers)
    listing = "\n\n".join(f"Answer {i + 1}:\n{a}" for i, a in enumerate(answers))
    question = messages(step.system, step.prompt, ctx.values, ctx.step_id)[-1].content
    if step.method == "judge":
        msgs = [Message("system", "You judge answers. Reply with the number of the best "
                        "answer only."),
                Message("user", f"Question:\n{question}\n\n{listing}\n\nWhich answer is best?")]
        choices = [str(i + 1) for i in range(len(answers))]
        response = await ctx.caller.generate(step, msgs, schema={"type": "string", "enum": choices},
                                      temperature=0.0, max_tokens=8, model=step.judge_model,
                                      stream=False)
        pick = parse_json(response.text, f"{ctx.step_id} judge")
        if pick not in choices:
            raise BadResponse(f"the judge answered {pick!r}")
        k = int(pick) - 1
        return {"answer": answers[k], "chosen": k + 1, "answers": answers}
    msgs = [Message("system", "Combine the answers into one answer that keeps what they "
                    "agree on and is correct. Reply with the combined answer only."),
            Message("user", f"Question:\n{question}\n\n{listing}")]
    response = await ctx.caller.generate(step, msgs, temperature=0.2, model=step.judge_model,
                                  stream=True)
    return {"answer": response.text.strip(), "answers": answers}


async def redo_answer(step: EnsembleStep, ctx: StepContext, index: int, current: Any) -> Any:
    """The combined output with member `index` asked again (the other answers kept)."""
    answers = list(current.get("answers", [])) if isinstance(current, dict) else []
    if not 0 <= index < len(answers):
        raise StepError(f"{ctx.step_id} has no answer {index}")
    answers[index] = await redo_member(step, ctx, index)
    return await combine(step, ctx, answers)


def parse_answer(step: EnsembleStep, text: str, original: Any, where: str) -> Any:
    """A label, a JSON output, or (for a vote of free text) a new winning answer."""
    labels = list(step.labels or [])
    if labels and not text.lstrip().startswith("{"):
        return label_value(labels, text, where)
    if step.output_schema is None and not isinstance(original, dict | list):
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        if isinstance(original, dict) and step.output_schema is None:
            return {**original, "answer": text}  # a new answer for the vote's winner
        value = json_value(text, where)  # raises, saying where the JSON breaks
    fail_on(validate.problems(value, step.output_schema), where)
    return value


def output_fields(step: EnsembleStep, recipe: Any) -> frozenset[str]:
    """A vote's keys (one member's answers are always voted), and the method's."""
    vote_keys = {"answer", "votes", "answers", "agreement"}
    return frozenset(vote_keys | ({"chosen"} if step.method == "judge" else set()))


KIND = register(StepKind(
    "ensemble", EnsembleStep, run_ensemble, templates=("prompt", "system"),
    calls_model=True, comparable=True, parse_value=parse_answer, fields=output_fields,
    items=Items(call=lambda step: step, redo=redo_answer, combine=combine),
))
