"""`podium models`, `route`, `chat` and `compare`: the commands about models."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from podium.tui.cli_common import emit_json, friendly, make_engine, open_store


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="JSON array.")
@click.option("--check", is_flag=True, help="Also try to reach each remote server "
              "(exit code 1 when one cannot be used: unreachable, or its key refused "
              "or missing).")
@click.pass_context
@friendly
def models(ctx: click.Context, as_json: bool, check: bool) -> None:
    """The model catalog: the embedded model and those in config.toml. With --check,
    exits 1 when a remote model cannot be used (unreachable, key refused or missing)."""
    if ctx.invoked_subcommand is not None:
        return
    from podium.core import paths
    from podium.core.config import load_settings, resolve_key

    settings = load_settings()
    calibrated = calibrations(settings)
    rows = []
    for name, spec in settings.catalog().items():
        if spec.provider == "llamacpp":
            available = bool(spec.path and Path(spec.path).exists())
            state = "ready" if available else "missing file"
        else:
            available = not spec.key_env or bool(resolve_key(spec.key_env))
            state = "ready" if available else f"no key: set {spec.key_env}"
        rows.append({"name": name, "provider": spec.provider, "tier": spec.resolved_tier,
                     "default": name == settings.default_model, "available": available,
                     "state": state, "context": spec.context, "path": spec.path,
                     "base_url": spec.base_url, "key_env": spec.key_env,
                     "price_in": spec.price_in, "price_out": spec.price_out,
                     "fallbacks": spec.fallbacks, "description": spec.description,
                     "calibration": calibrated.get(name)})
    if check:
        for name, state in _reachability(settings).items():
            row = next(r for r in rows if r["name"] == name)
            row["state"], row["available"] = state, state == "reachable"
    # A remote that cannot be used (unreachable, key refused or missing) fails the check.
    failed = check and any(not r["available"] for r in rows if r["provider"] != "llamacpp")
    if as_json:
        emit_json(rows)
    else:
        # Each column as wide as its widest cell: a long state must not push its
        # row's last column out of line.
        name_w = max(16, *(len(str(r["name"])) for r in rows))
        states = {r["name"]: str(r["state"]) + (f", {r['calibration']}" if r["calibration"]
                                               else "") for r in rows}
        state_w = max(12, *(len(s) for s in states.values()))
        for r in rows:
            mark = "*" if r["default"] else " "
            where = r["description"] or r["base_url"] or r["path"] or ""
            click.echo(f"{mark} {r['name']:<{name_w}} {r['provider']:<9} {r['tier']:<6} "
                       f"ctx {r['context']:<6} {states[str(r['name'])]:<{state_w}} {where}")
        click.echo(f"\nconfig: {paths.config_file()}", err=True)
    if failed:  # a script's `podium models --check && ...` must not go on
        sys.exit(1)


def calibrations(settings: Any) -> dict[str, str]:
    """Each local model's calibration, in words: how old, stale, or none (the shipped
    fit serves), and how many outcomes runs taught its router. Reads the database only
    if there is one (never creates it)."""
    import time

    from podium.core.models.calibrate import calibration_state
    from podium.core.models.router_fit import MAX_SEEN, age_text, fingerprint
    from podium.core.paths import db_path
    from podium.core.store import Store

    store = Store.open() if db_path().exists() else None
    out = {}
    try:
        for name, spec in settings.catalog().items():
            if spec.provider != "llamacpp" or not spec.path or not Path(spec.path).exists():
                continue
            state, fit, _ = calibration_state(store, name, spec)
            if fit is not None and fit.created_at is not None:
                out[name] = f"calibrated {age_text(time.time() - fit.created_at)} ago"
            else:
                out[name] = {"stale": "calibration stale: recalibrate",
                             "shipped": "shipped fit"}.get(state, "not calibrated")
            # What runs taught the router of this model file (`ModelHub.learn`).
            seen = len(store.route_outcomes(fingerprint(spec.path), MAX_SEEN)) if store \
                else 0
            if seen:
                out[name] += f", {seen} outcome{'s' if seen != 1 else ''} seen"
    finally:
        if store is not None:
            store.close()
    return out


def _reachability(settings: Any) -> dict[str, str]:
    """Each remote model with a key -> whether its server answers (all asked at once).
    Works without the embedded model too: nothing local is loaded."""
    import asyncio

    from podium.providers.registry import build_providers

    owned: list[Any] = []
    remote = {n: p for n, p in build_providers(settings, owned=owned).items()
              if hasattr(p, "ping")}

    async def ask() -> dict[str, str]:
        try:
            states = await asyncio.gather(*(p.ping() for p in remote.values()),
                                          return_exceptions=True)
            return {name: _said(s) for name, s in zip(remote, states, strict=True)}
        finally:
            for client in owned:
                await client.aclose()

    return asyncio.run(ask()) if remote else {}


def _said(state: str | BaseException) -> str:
    """A ping's answer, or what it raised, as a state for the table."""
    return state if isinstance(state, str) else f"unreachable ({type(state).__name__})"


@models.command("add")
@click.argument("name")
@click.option("--path", type=click.Path(exists=True, dir_okay=False),
              help="A GGUF file (a local llama.cpp model).")
@click.option("--provider", type=click.Choice(["llamacpp", "openai", "anthropic"]),
              help="Default: llamacpp with --path, else openai.")
@click.option("--base-url", help="API root of a remote model.")
@click.option("--model", "remote_model", help="The server's name for the model.")
@click.option("--key-env", help="Environment variable holding the API key.")
@click.option("--price-in", type=float, default=0.0, help="USD per million input tokens.")
@click.option("--price-out", type=float, default=0.0, help="USD per million output tokens.")
@click.option("--context", type=int, default=2048, show_default=True, help="Context size.")
@friendly
def models_add(name: str, path: str | None, provider: str | None, base_url: str | None,
               remote_model: str | None, key_env: str | None, price_in: float,
               price_out: float, context: int) -> None:
    """Add model NAME to config.toml (a GGUF file, or a remote API)."""
    from podium.core import paths
    from podium.core.config import load_settings
    from podium.core.errors import ConfigError
    from podium.providers.http import url_problem

    provider = provider or ("llamacpp" if path else "openai")
    problem = url_problem(base_url) if base_url is not None else None
    if problem:
        raise ConfigError(f"--base-url {base_url!r} is not a server's URL: {problem}",
                          "give the API's root, e.g. https://api.openai.com/v1 or "
                          "http://127.0.0.1:8080/v1")
    fields: dict[str, Any] = {"provider": provider, "context": context}
    if path:
        fields["path"] = str(Path(path).resolve())
    for key, value in (("base_url", base_url), ("model", remote_model),
                       ("key_env", key_env)):
        if value:
            fields[key] = value
    if price_in or price_out:
        fields["price_in"], fields["price_out"] = price_in, price_out
    file = paths.config_file()
    if name in load_settings().catalog():
        raise ConfigError(f"model '{name}' is already in the catalog",
                          f"pick another name, or edit {file}")
    before = file.read_text(encoding="utf-8") if file.exists() else ""
    # json.dumps of a str or number is a valid TOML value.
    table = f'\n[models.{json.dumps(name)}]\n' + "".join(
        f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(before + table, encoding="utf-8")
    try:
        load_settings()
    except ConfigError:
        file.write_text(before, encoding="utf-8")  # leave the config as it was
        raise
    click.echo(f"added {name} to {file}")


@click.command()
@click.argument("run_id", metavar="RUN", required=False)
@click.argument("step_id", metavar="STEP", required=False)
@click.option("--verdict", type=click.Choice(["local", "remote", "both", "neither"]),
              help="Say which answer of the step's last comparison was right (no model "
              "is called).")
@click.option("--pairs", is_flag=True, help="Print the judged comparisons as JSON lines "
              "{prompt, local_correct}, for bench/calibration/fit.py --extra.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@friendly
def compare(run_id: str | None, step_id: str | None, verdict: str | None, pairs: bool,
            as_json: bool) -> None:
    """Run a finished model STEP of RUN again on the other tier (local <-> remote) and
    show both answers side by side; the sibling is stored, the original kept.

    \b
    podium compare RUN STEP                     both answers side by side
    podium compare RUN STEP --verdict remote    which one was right
    podium compare --pairs > pairs.jsonl        judged pairs, to refit the router
    """
    import asyncio
    from dataclasses import asdict

    from podium.core.models.compare import calibration_rows, judge
    from podium.core.models.compare import compare as run_compare

    store = open_store()
    if pairs:
        for row in calibration_rows(store):
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if run_id is None or step_id is None:
        raise click.UsageError("give RUN and STEP (or --pairs)")
    if verdict is not None:
        judge(store, run_id, step_id, verdict)
        if as_json:
            emit_json({"run_id": store.get_run(run_id).id, "step_id": step_id,
                       "verdict": verdict})
        else:
            click.echo(f"{step_id}: the {verdict} answer was right" if verdict in (
                "local", "remote") else f"{step_id}: {verdict} were right")
        return
    engine = make_engine(store, None)

    async def main() -> Any:
        try:
            return await run_compare(store, engine.hub, run_id, step_id)
        finally:
            await engine.hub.aclose()

    original, fresh = asyncio.run(main())
    if as_json:
        emit_json({"run_id": store.get_run(run_id).id, "step_id": step_id,
                   "original": asdict(original), "sibling": asdict(fresh)})
        return
    from rich.columns import Columns
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    def panel(title: str, side: Any) -> Any:
        body = side.output if isinstance(side.output, str) else json.dumps(
            side.output, indent=2, ensure_ascii=False)
        info = f"{side.input_tokens}+{side.output_tokens} tok · ${side.cost:.4f}" + (
            f" · {side.latency_ms / 1000:.2f}s" if side.latency_ms else "")
        return Panel(Text(body), title=f"{title}: {side.model} ({side.tier})",
                     subtitle=info, expand=True)

    Console().print(Columns([panel("original", original), panel("sibling", fresh)],
                            equal=True, expand=True))


# --- models: route and chat -------------------------------------------------------------------


@click.command()
@click.argument("text", required=False)
@click.option("--file", "prompts_file", type=click.File("r"),
              help="JSONL: one {\"prompt\": ...} per line; one decision per line out.")
@click.option("--route", "route_", default="auto", show_default=True,
              help="auto, local, remote or a model name.")
@click.option("--privacy", type=click.Choice(["local"]), help="Pin to this machine.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@friendly
def route(text: str | None, prompts_file: Any, route_: str, privacy: str | None,
          as_json: bool) -> None:
    """Explain where TEXT would be routed, and why (no model is called)."""
    from podium.core.config import load_settings
    from podium.core.models.provider import Message, ModelRequest
    from podium.core.models.routing import Policy, decide
    from podium.providers.registry import build_hub

    if not text and prompts_file is None:
        raise click.UsageError("give TEXT or --file PROMPTS.jsonl")
    settings = load_settings()
    hub = build_hub(settings)
    policy = Policy(route=route_, privacy=privacy)
    fit = _router_fit(settings)

    def one(prompt: str) -> dict[str, Any]:
        request = ModelRequest(messages=(Message("user", prompt),))
        return decide(request, policy, hub.tiers(), hub.default_local,
                      unavailable=hub.unavailable, fit=fit).to_dict()

    if prompts_file is not None:
        for number, line in enumerate(prompts_file, start=1):
            if not line.strip():
                continue
            try:
                prompt = json.loads(line)["prompt"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise click.BadParameter(f"line {number}: expected {{\"prompt\": ...}}",
                                         param_hint="--file") from None
            click.echo(json.dumps(one(str(prompt)), ensure_ascii=False))
        return
    decision = one(text or "")
    if as_json:
        emit_json(decision)
        return
    click.echo(f"{decision['model']} ({decision['tier']}) · complexity {decision['score']}")
    for reason in decision["reasons"]:
        click.echo(f"  - {reason}")


@click.command()
@click.option("--model", help="Always use this model (default: route every turn).")
@click.option("--route", "route_", default="auto", show_default=True,
              help="auto, local, remote or a model name.")
@click.option("--system", help="A system prompt for a new chat.")
@click.option("--resume", "chat_id", metavar="CHAT", help="Continue a stored chat.")
@click.option("--list", "list_", is_flag=True, help="List stored chats.")
@click.option("--max-tokens", default=512, show_default=True, type=click.IntRange(1, 32768),
              help="Longest answer.")
@friendly
def chat(model: str | None, route_: str, system: str | None, chat_id: str | None,
         list_: bool, max_tokens: int) -> None:
    """Talk with routed models, line by line; every turn is stored (Ctrl-D to end)."""
    import asyncio

    from podium.core.models.chat import ChatSession
    from podium.core.recipe.schema import ModelOptions

    store = open_store()
    if list_:
        for c in store.list_chats():
            click.echo(f"{c['id']:<13} {c['messages']:>4} messages  {c['title']}")
        return
    engine = make_engine(store, None)
    options = ModelOptions(model=model, route=route_, max_tokens=max_tokens, temperature=0.7)

    async def talk() -> None:
        try:
            if chat_id:
                session = ChatSession.open(store, engine.hub, chat_id, options)
                click.secho(f"chat {session.chat_id} · {len(session.history)} messages",
                            dim=True)
            else:
                session = ChatSession.start(store, engine.hub, options=options, system=system)
                click.secho(f"chat {session.chat_id} · Ctrl-D to end · resume with "
                            f"podium chat --resume {session.chat_id}", dim=True)
            while True:
                try:
                    line = await asyncio.to_thread(input, "> ")
                except EOFError:
                    click.echo()
                    break
                if not line.strip():
                    continue
                if line.strip() in ("/quit", "/exit"):
                    break
                turn = await session.ask(line, lambda piece: click.echo(piece, nl=False))
                click.echo()
                click.secho(f"  {turn.model} ({turn.tier}) · {turn.input_tokens}+"
                            f"{turn.output_tokens} tok · ${turn.cost:.4f} · "
                            f"{turn.seconds:.1f}s · {'; '.join(turn.reasons)}", dim=True)
        finally:
            await engine.hub.aclose()

    try:
        asyncio.run(talk())
    except KeyboardInterrupt:
        click.echo()


def _router_fit(settings: Any) -> Any:
    """The fit the engine's router uses: the configured local model's calibration (or
    the shipped fit) plus this machine's judged comparisons, if a database exists
    (explaining a route never creates one)."""
    from podium.core.models.calibrate import active_fit
    from podium.core.paths import db_path
    from podium.core.store import Store

    if not db_path().exists():
        return active_fit(None, settings)
    store = Store.open()
    try:
        return active_fit(store, settings)
    finally:
        store.close()
