"""The three single calls a step can make, shared by top-level steps, `map` and
`ensemble`: ask a model (`llm`), pick a label (`classify`), render text (`template`).
Each is declared once here, schema and runner; the kinds wrap them as steps."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import Field

from podium.core.errors import BadResponse
from podium.core.models.provider import ChoiceScorer, Message, ModelRequest
from podium.core.recipe import templates
from podium.core.recipe.schema import ModelOptions, OutputSchema, Strict
from podium.core.steps.base import StepContext


class LlmCall(ModelOptions):
    """Ask a model; with `schema`, the answer is a JSON object that satisfies it."""

    kind: Literal["llm"]
    prompt: str = Field(description="The user prompt (template).")
    output_schema: OutputSchema = Field(None, alias="schema",
                                        description="JSON Schema of the answer.")


class ClassifyCall(ModelOptions):
    """Choose one of `labels` for `input`; returns `{label, confidence}`."""

    kind: Literal["classify"]
    input: str = Field(description="The text to classify (template).")
    labels: list[str] = Field(min_length=2)
    instructions: str = ""
    calibrate: bool = Field(True, description="Correct the model's bias toward some labels "
                            "by scoring a content-free input too (local models).")
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(24, ge=1, le=256)


class TemplateCall(Strict):
    """Render text from inputs and earlier outputs; no model."""

    kind: Literal["template"]
    template: str




def messages(system: str | None, prompt: str, values: dict[str, Any],
             where: str) -> list[Message]:
    """Render system and prompt templates into chat messages."""
    out = []
    if system:
        out.append(Message("system", templates.render(system, values, what=f"{where}.system")))
    out.append(Message("user", templates.render(prompt, values, what=f"{where}.prompt")))
    return out


def parse_json(text: str, what: str, *, cut_at: int | None = None) -> Any:
    """Parse a model's JSON answer, or raise a retryable `BadResponse` that shows where
    it broke. `cut_at`: the answer stopped at that many tokens (max_tokens)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        start = max(0, e.pos - 60)
        near = ("..." if start else "") + text[start:e.pos + 20].replace("\n", " ")
        if cut_at is not None:
            hint = (f"the answer was cut off at max_tokens = {cut_at}: raise max_tokens, or "
                    "bound the schema (maxItems on arrays, maxLength on strings) so a "
                    "small model cannot repeat itself until it runs out")
        else:
            hint = "raise max_tokens if the answer was cut off"
        raise BadResponse(f"{what}: the model's answer is not valid JSON: {e.msg} at "
                          f"character {e.pos} of {len(text)}, near {near!r}", hint) from None


# What a schema allows when it sets no bound of its own: a small model under a grammar
# can otherwise repeat an item (or a word inside a string) until max_tokens runs out.
DEFAULT_MAX_ITEMS = 32
DEFAULT_MAX_LENGTH = 2000


def bounded(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """`schema` with `maxItems` on every array and `maxLength` on every free string that
    has none (enums, consts and patterns are bounded already)."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    kinds = out.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "array" in kinds and "maxItems" not in out:
        out["maxItems"] = DEFAULT_MAX_ITEMS
    if "string" in kinds and not {"maxLength", "enum", "const", "pattern", "format"} & set(out):
        out["maxLength"] = DEFAULT_MAX_LENGTH
    if isinstance(out.get("items"), dict):
        out["items"] = bounded(out["items"])
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: bounded(v) for k, v in out["properties"].items()}
    return out


async def run_llm(call: LlmCall, ctx: StepContext, values: dict[str, Any], *,
                  stream: bool = True, seed: int | None = None) -> Any:
    """Text, or a JSON value when the call has a schema."""
    msgs = ctx.with_feedback(messages(call.system, call.prompt, values, ctx.step_id))
    response = await ctx.caller.generate(call, msgs, schema=bounded(call.output_schema),
                                         stream=stream, seed=seed)
    if call.output_schema is not None:
        cut = call.max_tokens if response.finish_reason == "length" else None
        return parse_json(response.text, ctx.step_id, cut_at=cut)
    return response.text.strip()


def classify_messages(call: ClassifyCall, values: dict[str, Any], where: str) -> list[Message]:
    """The prompt that asks for one label."""
    text = templates.render(call.input, values, what=f"{where}.input")
    instructions = templates.render(call.instructions, values, what=f"{where}.instructions") \
        if call.instructions else ""
    system = call.system and templates.render(call.system, values, what=f"{where}.system")
    labels = ", ".join(call.labels)
    ask = (f"{instructions}\n" if instructions else "") + \
        f"Classify the text into exactly one of these labels: {labels}.\n" \
        "Answer with the label only."
    return [Message("system", (system + "\n" if system else "") + ask),
            Message("user", text)]


async def label_probs(options: ModelOptions, msgs: list[Message], labels: list[str],
                      ctx: StepContext, *, model: str | None = None,
                      calibrate: bool = True) -> list[float] | None:
    """Probability of each label as the whole answer, where the routed model can score
    choices (local models); None where it cannot."""
    provider, decision = ctx.caller.route(options, msgs, model=model, max_tokens=8)
    if not isinstance(provider, ChoiceScorer):
        ctx.caller.decisions.pop()  # the caller routes again for its fallback call
        return None
    request = ModelRequest(messages=tuple(msgs), temperature=0.0, max_tokens=1)
    logps, usage = await provider.score_choices(request, labels)
    ctx.caller.account(decision, usage)
    if calibrate:
        # Contextual calibration (Zhao et al., 2021): a small model prefers some labels
        # whatever the text; divide out its preference on a content-free input.
        blank = ModelRequest(messages=tuple(msgs[:-1]) + (Message("user", "N/A"),),
                             max_tokens=1)
        prior, usage = await provider.score_choices(blank, labels)
        ctx.caller.account(decision, usage)
        logps = [lp - p for lp, p in zip(logps, prior, strict=True)]
    top = max(logps)
    weights = [math.exp(lp - top) for lp in logps]
    total = sum(weights)
    return [w / total for w in weights]


async def constrained_label(options: ModelOptions, msgs: list[Message], labels: list[str],
                            ctx: StepContext, *, model: str | None = None,
                            temperature: float | None = None, seed: int | None = None) -> str:
    """One label, generated under a grammar that allows only the labels."""
    response = await ctx.caller.generate(options, msgs, schema={"type": "string", "enum": labels},
                                  temperature=temperature, max_tokens=min(
                                      options.max_tokens, 64), model=model, seed=seed,
                                  stream=False)
    label = parse_json(response.text, ctx.step_id)
    if label not in labels:
        raise BadResponse(f"the model answered {label!r}, not one of the labels")
    return str(label)


async def run_classify(call: ClassifyCall, ctx: StepContext,
                       values: dict[str, Any]) -> dict[str, Any]:
    """`{label, confidence, scores}`. Where the model can score choices (local models),
    the label is the likeliest and confidence its share of probability over the labels;
    elsewhere the answer is constrained to the labels and confidence is unknown."""
    msgs = ctx.with_feedback(classify_messages(call, values, ctx.step_id))
    probs = await label_probs(call, msgs, list(call.labels), ctx, calibrate=call.calibrate)
    if probs is not None:
        best = max(range(len(probs)), key=probs.__getitem__)
        return {"label": call.labels[best], "confidence": round(probs[best], 4),
                "scores": {lab: round(p, 4) for lab, p in zip(call.labels, probs,
                                                               strict=True)}}
    label = await constrained_label(call, msgs, list(call.labels), ctx,
                                    temperature=call.temperature)
    return {"label": label, "confidence": None, "scores": None}


async def run_call(call: LlmCall | ClassifyCall | TemplateCall, ctx: StepContext,
                   values: dict[str, Any], *, stream: bool = True) -> Any:
    """Run any single call."""
    if isinstance(call, LlmCall):
        return await run_llm(call, ctx, values, stream=stream)
    if isinstance(call, ClassifyCall):
        return await run_classify(call, ctx, values)
    return templates.render(call.template, values, what=f"{ctx.step_id}.template")
