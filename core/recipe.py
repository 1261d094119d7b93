"""The recipe format: TOML in, a validated `Recipe` out, or every problem at once.

A recipe is checked completely before anything runs: the TOML syntax, the schema
(unknown keys, missing fields, wrong types), template syntax, references to steps
and inputs, and cycles. Each problem is reported as `file:line: field: message`
with a hint, so a typo costs one glance, not a failed run.
"""

from __future__ import annotations

import difflib
import hashlib
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from core.errors import RecipeError, RecipeErrors
from core.toml_lines import KeyLines

FORMAT_VERSION = 1


class Strict(BaseModel):
    """Base for every schema: unknown keys are errors, not silent defaults."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- inputs ------------------------------------------------------------------------------

InputType = Literal["string", "number", "integer", "boolean", "list", "object", "file"]


class InputSpec(Strict):
    """One input of a recipe. A `file` input is read when the run starts and stored
    with it as `{path, name, text}`, so the run stays meaningful if the file changes."""

    type: InputType = Field("string", description="string, number, integer, boolean, list, "
                            "object or file")
    description: str = ""
    default: Any = None
    required: bool | None = Field(None, description="Defaults to true when there is no default.")

    @property
    def is_required(self) -> bool:
        """Whether a run must be given this input."""
        return self.required if self.required is not None else self.default is None


# --- step kinds --------------------------------------------------------------------------


class ModelOptions(Strict):
    """How a step calls a model."""

    model: str | None = Field(None, description="A model from the catalog; default: routed.")
    route: str = Field("auto", description="auto, local, remote, cascade (local first, "
                       "remote when the answer fails a check), judge (the local model "
                       "rates the request) or a model name.")
    system: str | None = Field(None, description="System prompt (template).")
    temperature: float = Field(0.2, ge=0, le=2)
    max_tokens: int = Field(256, ge=1, le=32768)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list, description="Stop the answer at any of "
                            "these strings.")
    privacy: Literal["local"] | None = Field(None, description="\"local\": never leaves "
                                             "this machine, whatever else holds.")
    fallbacks: list[str] = Field(default_factory=list, description="Models to try in order "
                                 "when the chosen one fails; \"local\" is the default "
                                 "local model.")
    verify: str | None = Field(None, description="With route = \"cascade\": an expression "
                               "over `answer` (the local answer; parsed JSON when there is a "
                               "schema), `inputs` and `steps`. When it is false, the call "
                               "escalates to a remote model.")


class StepBase(Strict):
    """Fields every top-level step has."""

    needs: list[str] = Field(default_factory=list, description="Steps that must finish first "
                             "(besides those the templates refer to).")
    description: str = ""
    retries: int = Field(1, ge=0, le=10, description="Extra attempts after a retryable failure.")
    backoff: float = Field(0.5, ge=0, le=60, description="First retry delay in seconds; "
                           "doubles each time, with jitter.")
    timeout: float | None = Field(None, gt=0, description="Seconds for one attempt.")
    join: Literal["all", "any"] = Field("all", description="all: skip if any dependency was "
                                        "skipped; any: run if at least one succeeded.")


JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


def check_json_schema(schema: dict[str, Any] | None, where: str = "schema") -> None:
    """The subset of JSON Schema that structured output relies on, checked up front:
    known types, properties and items that are schemas, lists where lists belong."""
    if schema is None:
        return
    kind = schema.get("type")
    for t in kind if isinstance(kind, list) else [kind] if kind is not None else []:
        if t not in JSON_TYPES:
            close = difflib.get_close_matches(str(t), sorted(JSON_TYPES), n=1)
            raise ValueError(f"{where}: unknown type '{t}'" + (
                f" (did you mean '{close[0]}'?)" if close else
                f"; types: {', '.join(sorted(JSON_TYPES))}"))
    for key in ("required", "enum"):
        if key in schema and not isinstance(schema[key], list):
            raise ValueError(f"{where}: '{key}' must be a list")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise ValueError(f"{where}: 'properties' must be a table of schemas")
    for name, sub in properties.items():
        if not isinstance(sub, dict):
            raise ValueError(f"{where}.properties.{name} must be a table (a schema)")
        check_json_schema(sub, f"{where}.properties.{name}")
    items = schema.get("items")
    if items is not None:
        if not isinstance(items, dict):
            raise ValueError(f"{where}.items must be a table (a schema)")
        check_json_schema(items, f"{where}.items")


class LlmCall(ModelOptions):
    """Ask a model; with `schema`, the answer is a JSON object that satisfies it."""

    kind: Literal["llm"]
    prompt: str = Field(description="The user prompt (template).")
    output_schema: dict[str, Any] | None = Field(None, alias="schema",
                                                 description="JSON Schema of the answer.")

    @field_validator("output_schema")
    @classmethod
    def _schema_ok(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        check_json_schema(v)
        return v


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


class LlmStep(StepBase, LlmCall):
    """A model call step."""


class ClassifyStep(StepBase, ClassifyCall):
    """A classification step."""


class TemplateStep(StepBase, TemplateCall):
    """A text step."""


class BranchStep(StepBase):
    """Pick which downstream steps run: `on` is an expression, `cases` map its value to
    steps; the steps of the other cases are skipped, and so is what depends only on them."""

    kind: Literal["branch"]
    on: str = Field(description="Expression, e.g. steps.triage.label")
    cases: dict[str, list[str]]
    default: list[str] = Field(default_factory=list)


SubStep = Annotated[Union[LlmCall, ClassifyCall, TemplateCall], Field(discriminator="kind")]


class MapStep(StepBase):
    """Run `step` once per item of the list `over`, in parallel; output is the list of
    results. Inside, templates see `item` and `index`."""

    kind: Literal["map"]
    over: str = Field(description="Expression giving a list, e.g. steps.entities.people")
    step: SubStep
    concurrency: int = Field(4, ge=1, le=64)
    allow_failures: bool = Field(False, description="A failed item gives null instead of "
                                 "failing the step.")
    max_items: int = Field(100, ge=1, le=10000)


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
    output_schema: dict[str, Any] | None = Field(None, alias="schema")
    temperature: float = Field(0.8, ge=0, le=2)

    @field_validator("output_schema")
    @classmethod
    def _schema_ok(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        check_json_schema(v)
        return v
    judge_model: str | None = None
    concurrency: int = Field(4, ge=1, le=64)


class ReviewStep(StepBase):
    """A person's gate: hold the output of step `of` until someone approves, edits or
    rejects it (`podium review`). The gate's output is the decided value; put the
    steps that must see only reviewed work after the gate (refer to `steps.<gate>`)."""

    kind: Literal["review"]
    of: str = Field(description="The step whose output is reviewed.")
    when: str | None = Field(None, description="Expression over earlier outputs; review "
                             "only when it is true, else pass the output on unchanged, "
                             "e.g. steps.mood.label == 'angry'.")
    instructions: str = Field("", description="Shown to the reviewer (template).")
    on_reject: Literal["retry", "fail"] = Field("retry", description="retry: run the "
                                                "reviewed step again with the feedback, "
                                                "then review again; fail: the gate fails.")
    max_rounds: int = Field(3, ge=1, le=20, description="Reviews before a rejection fails "
                            "the gate.")
    items: bool = Field(False, description="Review each item of a `map` or each answer of "
                        "an `ensemble` on its own; the list or the vote is recomputed "
                        "from the decided items.")


Step = Annotated[
    Union[LlmStep, ClassifyStep, TemplateStep, BranchStep, MapStep, EnsembleStep,
          ReviewStep],
    Field(discriminator="kind"),
]
STEP_KINDS = ("llm", "classify", "template", "branch", "map", "ensemble", "review")
MODEL_KINDS = frozenset({"llm", "classify", "map", "ensemble"})


class RecipeBudget(Strict):
    """What one run of the recipe may spend before it pauses at a budget review."""

    usd: float | None = Field(None, ge=0, description="USD on remote models.")
    tokens: int | None = Field(None, ge=1, description="Tokens in and out, every model.")


class Recipe(Strict):
    """A saved workflow: inputs, steps (a DAG), outputs."""

    format: int = Field(FORMAT_VERSION, description="Recipe format version.")
    name: str = ""
    description: str = ""
    max_parallel: int = Field(4, ge=1, le=256, description="Steps running at once.")
    budget: RecipeBudget = Field(default_factory=RecipeBudget, description="Caps per run; "
                                 "they override config.toml's budget_per_run and "
                                 "tokens_per_run.")
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    steps: dict[str, Step] = Field(min_length=1)
    outputs: dict[str, str] = Field(default_factory=dict, description="Name -> expression, "
                                    "e.g. summary = \"steps.summarize\". Default: the final "
                                    "steps' outputs.")

    _source: str = PrivateAttr("")
    _path: str = PrivateAttr("<recipe>")
    _plan: Any = PrivateAttr(None)
    _digests: dict[str, bytes] = PrivateAttr(default_factory=dict)

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: int) -> int:
        if v != FORMAT_VERSION:
            raise ValueError(f"this Podium reads recipe format {FORMAT_VERSION}, not {v}")
        return v

    @property
    def source(self) -> str:
        """The TOML text this recipe was loaded from."""
        return self._source

    @property
    def path(self) -> str:
        """Where it was loaded from."""
        return self._path

    @property
    def plan(self) -> Any:
        """The DAG of the steps (a `core.plan.Plan`), built once."""
        if self._plan is None:
            from core.plan import build

            self._plan = build(self)
        return self._plan

    def step_digest(self, step_id: str) -> bytes:
        """A hash of one step's definition (for cache keys), computed once."""
        digest = self._digests.get(step_id)
        if digest is None:
            digest = hashlib.sha256(self.steps[step_id].model_dump_json().encode()).digest()
            self._digests[step_id] = digest
        return digest

    @property
    def hash(self) -> str:
        """Content hash of the source: the pinned version a run refers to."""
        return hashlib.sha256(self._source.encode()).hexdigest()


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the recipe format (for editors and `podium recipe schema`)."""
    schema = Recipe.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Podium recipe"
    return schema


# --- loading -----------------------------------------------------------------------------


def load(path: str | Path) -> Recipe:
    """Read and validate a recipe file. Raises `RecipeErrors` listing every problem."""
    p = Path(path)
    try:
        source = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"no such recipe file: {p}", "check the path, or run `podium "
                          "recipe list` to see the shipped recipes", file=str(p)) from None
    except IsADirectoryError:
        raise RecipeError(f"{p} is a directory", "give a recipe file (.toml)",
                          file=str(p)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"cannot read recipe: {e}", file=str(p)) from None
    return loads(source, str(p))


def loads(source: str, path: str = "<recipe>", *, checked: bool = False) -> Recipe:
    """Validate recipe TOML text; `path` names it in errors. `checked`: the source is a
    version pinned by a stored run, checked in full when that run was created, so the
    reference checks (which compile every template) are skipped; a resume of a long
    recipe then costs no more than the steps it runs."""
    from core.recipe_errors import field_name, schema_errors, toml_syntax_error

    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as e:
        raise toml_syntax_error(e, path) from None
    lines = KeyLines(source)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        raise RecipeErrors(schema_errors(e, data, lines, path)) from None
    recipe._source = source
    recipe._path = path
    if not recipe.name:
        recipe.name = Path(path).stem if path != "<recipe>" else "recipe"

    from core.plan import check

    problems = [] if checked else check(recipe)
    if problems:
        raise RecipeErrors(sorted([
            RecipeError(pr.message, pr.hint, file=path, line=lines.line_of(pr.loc),
                        field=field_name(pr.loc))
            for pr in problems
        ], key=lambda e: e.line or 0))
    return recipe


def check_models(recipe: Recipe, catalog: list[str]) -> None:
    """Every model a recipe names must be in the catalog (config-dependent, so apart
    from `loads`). Raises `RecipeErrors` with locations."""
    from core.recipe_errors import field_name

    lines = KeyLines(recipe.source)
    known = sorted(catalog)
    problems: list[RecipeError] = []

    def check(loc: tuple[Any, ...], name: str | None) -> None:
        if not name or name in catalog or name in ("auto", "local", "remote", "cascade",
                                                    "judge"):
            return
        close = difflib.get_close_matches(name, known, n=1)
        problems.append(RecipeError(
            f"unknown model '{name}'",
            (f"did you mean '{close[0]}'? " if close else "") + "models: " + ", ".join(known)
            + " (add others to config.toml; see `podium models`)",
            file=recipe.path, line=lines.line_of(loc), field=field_name(loc)))

    for sid, step in recipe.steps.items():
        calls: list[tuple[tuple[Any, ...], Any]] = [(("steps", sid), step)]
        if isinstance(step, MapStep):
            calls.append((("steps", sid, "step"), step.step))
        for base, call in calls:
            if isinstance(call, ModelOptions):
                check(base + ("model",), call.model)
                check(base + ("route",), call.route)
                for i, fallback in enumerate(call.fallbacks):
                    check(base + ("fallbacks", i), fallback)
        if isinstance(step, EnsembleStep):
            for i, model in enumerate(step.models):
                check(("steps", sid, "models", i), model)
            check(("steps", sid, "judge_model"), step.judge_model)
    if problems:
        raise RecipeErrors(problems)
