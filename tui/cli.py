"""The `podium` command line.

Heavy modules (pydantic, jinja2, sqlite-utils, llama.cpp) are imported inside the
commands, so `podium --help` stays instant. Expected failures are `PodiumError`s,
shown as `error:` and `hint:` lines with a meaningful exit code, never a traceback.

Exit codes: 0 succeeded, 1 failed, 2 bad usage / recipe / input, 3 waiting for
review, 130 cancelled.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
EXIT = {"succeeded": 0, "failed": 1, "waiting": 3, "cancelled": 130}


def friendly(fn: F) -> F:
    """Show `PodiumError`s as message + hint and exit with their code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from core.errors import PodiumError, RecipeErrors

        try:
            return fn(*args, **kwargs)
        except PodiumError as e:
            errors = e.errors if isinstance(e, RecipeErrors) else [e]
            for each in errors:
                click.secho(f"error: {each}", fg="red", err=True)
                if each.hint:
                    click.echo(f"hint: {each.hint}", err=True)
            if kwargs.get("as_json"):  # scripts asked for JSON: give them JSON
                emit_json({"status": "error", "error": str(e), "hint": e.hint,
                           "errors": [{"message": str(x), "hint": x.hint} for x in errors]})
            sys.exit(e.exit_code)

    return wrapper  # type: ignore[return-value]


def emit_json(value: Any) -> None:
    """One JSON document on stdout."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="podium")
@click.option("--db", type=click.Path(dir_okay=False), envvar="PODIUM_DB",
              help="SQLite file to use (default: the user data folder; env PODIUM_DB).")
def cli(db: str | None) -> None:
    """Podium: run AI workflows (recipes) locally, every run stored in SQLite.

    \b
    Start here:
      podium recipe list                 recipes you can run
      podium run document-pipeline       run one on the embedded model
      podium runs                        what ran
      podium show last                   every step of the last run
    """
    if db:
        os.environ["PODIUM_DB"] = db


def _open_store() -> Any:
    from core.store import Store

    return Store.open()


def _engine(store: Any, on_event: Any) -> Any:
    from core.config import load_settings
    from core.engine import Engine
    from core.hub import Budget
    from providers.registry import build_hub

    settings = load_settings()
    hub = build_hub(settings)
    if settings.budget_per_run is not None or settings.budget_per_day is not None:
        import datetime as dt

        midnight = dt.datetime.combine(dt.date.today(), dt.time()).timestamp()
        hub.budget = Budget(settings.budget_per_run, settings.budget_per_day,
                            spent_today=store.cost_since(midnight))
    return Engine(store, hub, max_parallel=settings.max_parallel, on_event=on_event)


def _parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint=what)
        if value.startswith("@"):  # NAME=@file reads a text value from a file
            try:
                value = Path(value[1:]).read_text(encoding="utf-8")
            except OSError as e:
                raise click.BadParameter(f"cannot read {value[1:]}: {e}",
                                         param_hint=what) from None
        out[name.strip()] = value
    return out


def find_recipe(name: str) -> Path:
    """A recipe by path, or by name in ./recipes, the user's recipes folder or the
    recipes shipped with Podium."""
    from core import paths
    from core.errors import RecipeError

    p = Path(name)
    if p.exists():
        return p
    stem = p.name.removesuffix(".toml")
    for folder in recipe_folders():
        candidate = folder / f"{stem}.toml"
        if candidate.exists():
            return candidate
    known = sorted({f.stem for d in recipe_folders() for f in d.glob("*.toml")})
    import difflib

    close = difflib.get_close_matches(stem, known, n=1)
    raise RecipeError(f"no recipe '{name}' (not a file, nor in {paths.recipes_dir()} or "
                      "./recipes)", f"did you mean '{close[0]}'?" if close else
                      "list them with: podium recipe list", file=name)


def recipe_folders() -> list[Path]:
    """Where recipes are looked up by name, first match wins."""
    from core import paths

    shipped = Path(__file__).resolve().parent.parent / "recipes"
    folders = [Path("recipes"), paths.recipes_dir(), shipped]
    return [f for f in dict.fromkeys(f.resolve() for f in folders) if f.is_dir()]


# --- run / resume ---------------------------------------------------------------------------


@cli.command()
@click.argument("recipe")
@click.option("-i", "--input", "inputs", multiple=True, metavar="NAME=VALUE",
              help="An input (repeatable). NAME=@FILE reads the value from a file.")
@click.option("--input-file", type=click.Path(exists=True, dir_okay=False),
              help="JSON or TOML file of inputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
@click.option("-q", "--quiet", is_flag=True, help="No live progress.")
@friendly
def run(recipe: str, inputs: tuple[str, ...], input_file: str | None, as_json: bool,
        quiet: bool) -> None:
    """Run RECIPE (a file, or a recipe name) and store everything it does."""

    given: dict[str, Any] = {}
    if input_file:
        given.update(_read_input_file(Path(input_file)))
    given.update(_parse_pairs(inputs, "-i/--input"))
    loaded = _load_checked(recipe)
    store = _open_store()
    _drive(store, lambda engine: engine.run(loaded, given), as_json, quiet)


@cli.command()
@click.argument("run_id", metavar="RUN")
@click.option("--skip", multiple=True, metavar="STEP",
              help="Settle an unfinished (in doubt) step as skipped.")
@click.option("--output", "settle", multiple=True, metavar="STEP=TEXT",
              help="Settle an unfinished step with this output (TEXT or @FILE).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
@click.option("-q", "--quiet", is_flag=True, help="No live progress.")
@friendly
def resume(run_id: str, skip: tuple[str, ...], settle: tuple[str, ...], as_json: bool,
           quiet: bool) -> None:
    """Continue RUN (interrupted, cancelled or failed) from what is stored.

    Finished steps are kept, never re-run; steps that were in flight are retried.
    """
    store = _open_store()
    outputs = {k: _maybe_json(v) for k, v in _parse_pairs(settle, "--output").items()}
    found = store.get_run(run_id)
    rid = found.id
    if found.status == "succeeded" and not (skip or settle):
        click.secho(f"run {rid} already succeeded; nothing to resume", fg="yellow", err=True)
    _drive(store, lambda engine: engine.resume(rid, skip=list(skip), settle=outputs),
           as_json, quiet)


def _load_checked(name: str) -> Any:
    """Load a recipe and check its models against the catalog."""
    from core import recipe as recipes
    from core.config import load_settings

    loaded = recipes.load(find_recipe(name))
    recipes.check_models(loaded, list(load_settings().catalog()))
    return loaded


def _maybe_json(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, dict | list) else text


def _read_input_file(path: Path) -> dict[str, Any]:
    from core.errors import InputError

    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as e:
        raise InputError(f"{path}: cannot parse inputs: {e}", "use a JSON object or TOML") \
            from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: inputs must be an object of NAME: VALUE")
    return data


def _drive(store: Any, start: Callable[[Any], Any], as_json: bool, quiet: bool) -> None:
    import asyncio

    from tui.progress import Progress

    progress = Progress(quiet=quiet)
    engine = _engine(store, progress)
    async def main() -> Any:
        try:
            return await start(engine)
        finally:
            await engine.hub.aclose()

    try:
        with progress:
            result = asyncio.run(main())
    except KeyboardInterrupt:
        rid = progress.run_id or "?"
        click.secho(f"cancelled run {rid}", fg="yellow", err=True)
        click.echo(f"hint: continue with: podium resume {rid}", err=True)
        if as_json:
            emit_json({"run_id": rid, "status": "cancelled", "outputs": None})
        sys.exit(130)
    run = store.get_run(result.run_id)
    if as_json:
        from tui.views import run_json

        emit_json(run_json(store, run))
    else:
        from tui.views import print_outputs

        print_outputs(store, run)
    sys.exit(EXIT.get(result.status, 1))


# --- looking at runs ----------------------------------------------------------------------


@cli.command()
@click.option("--status", type=click.Choice(["succeeded", "failed", "waiting", "running",
                                             "cancelled", "interrupted", "pending"]),
              help="Only runs with this status.")
@click.option("-n", "--limit", default=20, show_default=True,
              type=click.IntRange(1, 100_000), help="How many.")
@click.option("--json", "as_json", is_flag=True, help="JSON array.")
@friendly
def runs(status: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first."""
    from tui.views import print_runs, run_summary

    store = _open_store()
    wanted = None if status == "interrupted" else status
    items = store.list_runs(limit=limit, status="running" if status == "interrupted"
                            else wanted)
    if status in ("running", "interrupted"):
        items = [r for r in items if r.shown_status == status]
    if as_json:
        emit_json([run_summary(r) for r in items])
    elif not items and status:
        click.echo(f"no {status} runs")
    else:
        print_runs(items)


@cli.command()
@click.argument("run_id", metavar="RUN", default="last")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option("--full", is_flag=True, help="Whole outputs, not previews.")
@friendly
def show(run_id: str, as_json: bool, full: bool) -> None:
    """Every step of RUN (an id, a unique prefix, or `last`): status, model, tokens,
    latency and output."""
    from tui.views import print_run, run_json

    store = _open_store()
    run = store.get_run(run_id)
    if as_json:
        emit_json(run_json(store, run))
    else:
        print_run(store, run, full=full)


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="JSON array.")
@click.option("--check", is_flag=True, help="Also try to reach each remote server.")
@click.pass_context
@friendly
def models(ctx: click.Context, as_json: bool, check: bool) -> None:
    """The model catalog: the embedded model and those in config.toml."""
    if ctx.invoked_subcommand is not None:
        return
    from core import paths
    from core.config import load_settings, resolve_key

    settings = load_settings()
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
                     "fallbacks": spec.fallbacks, "description": spec.description})
    if check:
        for r in rows:
            if r["provider"] != "llamacpp" and r["available"]:
                r["state"] = _reachability(settings.catalog()[r["name"]])
                r["available"] = r["state"] == "reachable"
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        mark = "*" if r["default"] else " "
        where = r["description"] or r["base_url"] or r["path"] or ""
        click.echo(f"{mark} {r['name']:<16} {r['provider']:<9} {r['tier']:<6} "
                   f"ctx {r['context']:<6} {r['state']:<12} {where}")
    click.echo(f"\nconfig: {paths.config_file()}", err=True)


def _reachability(spec: Any) -> str:
    """Whether a remote model's server answers at all (a GET of its model list)."""
    import httpx

    from core.config import resolve_key

    key = resolve_key(spec.key_env) if spec.key_env else None
    if spec.provider == "anthropic":
        url = (spec.base_url or "https://api.anthropic.com").rstrip("/") + "/v1/models"
        headers = {"anthropic-version": "2023-06-01", **({"x-api-key": key} if key else {})}
    else:
        url = (spec.base_url or "").rstrip("/") + "/models"
        headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.get(url, headers=headers, timeout=3.0)
    except httpx.HTTPError as e:
        return f"unreachable ({type(e).__name__})"
    if response.status_code in (401, 403):
        return "key refused"
    return "reachable" if response.status_code < 500 else f"server error {response.status_code}"


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
    from core import paths
    from core.config import load_settings
    from core.errors import ConfigError

    provider = provider or ("llamacpp" if path else "openai")
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


@cli.command()
@click.argument("run_id", metavar="RUN")
@click.argument("step_id", metavar="STEP")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@friendly
def compare(run_id: str, step_id: str, as_json: bool) -> None:
    """Run a finished model STEP of RUN again on the other tier (local <-> remote) and
    show both answers side by side; the sibling is stored, the original kept."""
    import asyncio
    from dataclasses import asdict

    from core.compare import compare as run_compare

    store = _open_store()
    engine = _engine(store, None)

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


@cli.command()
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
    from core.config import load_settings
    from core.provider import Message, ModelRequest
    from core.routing import Policy, decide
    from providers.registry import build_hub

    if not text and prompts_file is None:
        raise click.UsageError("give TEXT or --file PROMPTS.jsonl")
    hub = build_hub(load_settings())
    policy = Policy(route=route_, privacy=privacy)

    def one(prompt: str) -> dict[str, Any]:
        request = ModelRequest(messages=(Message("user", prompt),))
        return decide(request, policy, hub.tiers(), hub.default_local,
                      unavailable=hub.unavailable).to_dict()

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


@cli.command()
@click.option("--model", help="Always use this model (default: route every turn).")
@click.option("--route", "route_", default="auto", show_default=True,
              help="auto, local, remote or a model name.")
@click.option("--system", help="A system prompt for a new chat.")
@click.option("--resume", "chat_id", metavar="CHAT", help="Continue a stored chat.")
@click.option("--list", "list_", is_flag=True, help="List stored chats.")
@click.option("--max-tokens", default=512, show_default=True, help="Longest answer.")
@friendly
def chat(model: str | None, route_: str, system: str | None, chat_id: str | None,
         list_: bool, max_tokens: int) -> None:
    """Talk with routed models, line by line; every turn is stored (Ctrl-D to end)."""
    import asyncio

    from core.chat import ChatSession
    from core.recipe import ModelOptions

    store = _open_store()
    if list_:
        for c in store.list_chats():
            click.echo(f"{c['id']:<13} {c['messages']:>4} messages  {c['title']}")
        return
    engine = _engine(store, None)
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


# --- recipes ---------------------------------------------------------------------------------


@cli.group()
def recipe() -> None:
    """Check, list and describe recipes."""


@recipe.command("check")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Problems as JSON.")
@friendly
def recipe_check(files: tuple[str, ...], as_json: bool) -> None:
    """Validate recipe FILES without running them (exit 0 valid, 2 invalid)."""
    from core.errors import RecipeError, RecipeErrors

    report = []
    bad = False
    for name in files:
        try:
            loaded = _load_checked(name)
            report.append({"file": name, "valid": True, "steps": len(loaded.steps)})
            if not as_json:
                click.secho(f"ok  {name}: {len(loaded.steps)} steps", fg="green")
        except RecipeError as e:
            bad = True
            errors = e.errors if isinstance(e, RecipeErrors) else [e]
            report.append({"file": name, "valid": False, "errors": [
                {"file": x.file, "line": x.line, "field": x.field, "message": x.message,
                 "hint": x.hint} for x in errors]})
            if not as_json:
                for x in errors:
                    click.secho(str(x), fg="red", err=True)
                    if x.hint:
                        click.echo(f"  hint: {x.hint}", err=True)
    if as_json:
        emit_json(report)
    sys.exit(2 if bad else 0)


@recipe.command("schema")
def recipe_schema() -> None:
    """Print the JSON Schema of the recipe format (for editors)."""
    from core.recipe import json_schema

    emit_json(json_schema())


@recipe.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON array.")
def recipe_list(as_json: bool) -> None:
    """Recipes that can be run by name."""
    import tomllib

    seen: dict[str, dict[str, Any]] = {}
    for folder in recipe_folders():
        for f in sorted(folder.glob("*.toml")):
            if f.stem in seen:
                continue
            try:
                description = tomllib.loads(f.read_text()).get("description", "")
            except (OSError, ValueError):
                description = "(unreadable)"
            seen[f.stem] = {"name": f.stem, "path": str(f), "description": description}
    if as_json:
        emit_json(list(seen.values()))
        return
    for r in seen.values():
        click.echo(f"{r['name']:<22} {r['description']}")


def main() -> None:
    """Console entry point."""
    cli(prog_name="podium")


if __name__ == "__main__":
    main()
