"""The recipe format's shared schema: a recipe's top level, its inputs, and the fields
every step (`StepBase`) and every model call (`ModelOptions`) has. Each step kind's own
model is declared by its module in `core/steps/`; `core.recipe.load` reads TOML into
these models.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from podium.core.errors import did_you_mean
from podium.core.recipe.plan import Plan
from podium.core.tools.config import ToolsConfig

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
    """Fields every top-level step has; each kind adds its own (`core/steps/`)."""

    if TYPE_CHECKING:  # each kind declares it as a Literal of its name
        kind: str

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


def check_json_schema(schema: dict[str, Any] | None, where: str = "") -> None:
    """The subset of JSON Schema that structured output relies on, checked up front:
    known types, properties and items that are schemas, lists where lists belong.
    `where` is the path inside the schema (the field itself is named by the caller)."""
    if schema is None:
        return
    at = f"{where}: " if where else ""
    kind = schema.get("type")
    for t in kind if isinstance(kind, list) else [kind] if kind is not None else []:
        if not isinstance(t, str):
            raise ValueError(f"{at}type must be a name or a list of names, such as "
                             f"\"object\" (not {type(t).__name__})")
        if t not in JSON_TYPES:
            close = did_you_mean(str(t), JSON_TYPES)
            raise ValueError(f"{at}unknown type '{t}'" + (
                f" ({close})" if close else f"; types: {', '.join(sorted(JSON_TYPES))}"))
    for key in ("required", "enum"):
        if key in schema and not isinstance(schema[key], list):
            raise ValueError(f"{at}'{key}' must be a list")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise ValueError(f"{at}'properties' must be a table of schemas")
    inner = f"{where}." if where else ""
    for name, sub in properties.items():
        if not isinstance(sub, dict):
            raise ValueError(f"{inner}properties.{name} must be a table (a schema)")
        check_json_schema(sub, f"{inner}properties.{name}")
    items = schema.get("items")
    if items is not None:
        if not isinstance(items, dict):
            raise ValueError(f"{inner}items must be a table (a schema)")
        check_json_schema(items, f"{inner}items")


def _checked(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    check_json_schema(schema)
    return schema


# A step's `schema` field: a JSON Schema, checked when the recipe loads.
OutputSchema = Annotated[dict[str, Any] | None, AfterValidator(_checked)]


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
    tools: ToolsConfig = Field(default_factory=ToolsConfig, description="What the recipe's "
                               "agents may reach: folders, hosts, shell, MCP servers, a "
                               "module of your own tools.")
    # Any registered kind: the loader validates against `registry.recipe_model()`.
    steps: dict[str, StepBase] = Field(min_length=1)
    outputs: dict[str, str] = Field(default_factory=dict, description="Name -> expression, "
                                    "e.g. summary = \"steps.summarize\". Default: the final "
                                    "steps' outputs.")

    _source: str = PrivateAttr("")
    _path: str = PrivateAttr("<recipe>")
    _plan: Plan | None = PrivateAttr(None)
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
    def plan(self) -> Plan:
        """The DAG of the steps, built by the loader."""
        assert self._plan is not None, "a Recipe comes from core.recipe.load"
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


