"""The `podium` command line.

Heavy modules (pydantic, jinja2, sqlite-utils, llama.cpp) are imported inside the
commands, so `podium --help` stays instant. Expected failures are `PodiumError`s,
shown as `error:` and `hint:` lines with a meaningful exit code, never a traceback.

Exit codes: 0 succeeded, 1 failed, 2 bad usage / recipe / input, 3 waiting for
review, 130 cancelled.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from podium.tui.cli_common import (
    drive,
    emit_json,
    friendly,
    open_store,
    parse_pairs,
)
from podium.tui.views import QUIET_HELP


class UsageProblem(click.UsageError):
    """A usage error (a missing argument, an unknown option, a bad value) shown as
    every Podium error is: the usage, then `error:` and `hint:` lines."""

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(error.format_message(), error.ctx)

    def show(self, file: Any = None) -> None:
        if self.ctx is not None:
            click.echo(self.ctx.get_usage(), err=True)
        click.secho(f"error: {self.message}", fg="red", err=True)
        if self.ctx is not None:
            click.echo(f"hint: see {self.ctx.command_path} --help", err=True)


class PodiumGroup(click.Group):
    """The top command. Ctrl-C anywhere (a prompt, an editor chooser) ends the command
    with exit code 130, as a cancelled run does, not click's "Aborted!" and 1; usage
    errors read like every other error, and as JSON too when `--json` was asked for."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            raise UsageProblem(e) from None

    def invoke(self, ctx: click.Context) -> Any:
        asked_json = "--json" in ctx.args[:ctx.args.index("--")] if "--" in ctx.args \
            else "--json" in ctx.args
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo(err=True)  # past the ^C the terminal echoed
            click.secho("cancelled", fg="yellow", err=True)
            raise click.exceptions.Exit(130) from None
        except click.UsageError as e:
            problem = e if isinstance(e, UsageProblem) else UsageProblem(e)
            if asked_json:  # a script asked for JSON: it gets JSON, errors included
                where = problem.ctx.command_path if problem.ctx else "podium"
                emit_json({"status": "error", "error": problem.message,
                           "hint": f"see {where} --help",
                           "errors": [{"message": problem.message,
                                       "hint": f"see {where} --help"}]})
            raise problem from None


@click.group(cls=PodiumGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="podium")
@click.option("--db", type=click.Path(dir_okay=False), envvar="PODIUM_DB",
              help="SQLite file to use (default: the user data folder; env PODIUM_DB).")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """Podium: run AI workflows (recipes) locally, every run stored in SQLite.

    \b
    Start here:
      podium                             the terminal app (on a terminal)
      podium recipe list                 recipes you can run
      podium run document-pipeline       run one on the embedded model
      podium runs                        what ran
      podium show last                   every step of the last run
      podium review                      outputs waiting for a person
    """
    if db:
        os.environ["PODIUM_DB"] = db
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            from podium.tui.cli_app import open_app

            friendly(open_app)()
        else:  # a pipe or a script: the help, as before the app existed
            click.echo(ctx.get_help())


# --- run / resume ---------------------------------------------------------------------------


@cli.command()
@click.argument("recipe")
@click.option("-i", "--input", "inputs", multiple=True, metavar="NAME=VALUE",
              help="An input (repeatable). NAME=@FILE reads the value from a file.")
@click.option("--input-file", type=click.Path(exists=True, dir_okay=False),
              help="JSON or TOML file of inputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
@friendly
def run(recipe: str, inputs: tuple[str, ...], input_file: str | None, as_json: bool,
        quiet: bool) -> None:
    """Run RECIPE (a file, or a recipe name) and store everything it does."""

    given: dict[str, Any] = {}
    if input_file:
        given.update(_read_input_file(Path(input_file)))
    given.update(parse_pairs(inputs, "-i/--input"))
    from podium.tui.cli_recipes import load_recipe

    loaded = load_recipe(recipe)
    store = open_store()
    drive(store, lambda engine: engine.run(loaded, given), as_json, quiet)


@cli.command()
@click.argument("run_id", metavar="RUN")
@click.option("--skip", multiple=True, metavar="STEP",
              help="Settle an unfinished (in doubt) step as skipped.")
@click.option("--output", "settle", multiple=True, metavar="STEP=TEXT",
              help="Settle an unfinished step with this output (TEXT or @FILE).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
@friendly
def resume(run_id: str, skip: tuple[str, ...], settle: tuple[str, ...], as_json: bool,
           quiet: bool) -> None:
    """Continue RUN (interrupted, cancelled, failed or waiting) from what is stored.

    Finished steps are kept, never re-run; steps that were in flight are retried.
    """
    store = open_store()
    outputs: dict[str, Any] = dict(parse_pairs(settle, "--output"))  # checked by the engine
    found = store.get_run(run_id)
    rid = found.id
    if found.status == "succeeded" and not (skip or settle):
        click.secho(f"run {rid} already succeeded; nothing to resume", fg="yellow", err=True)
    drive(store, lambda engine: engine.resume(rid, skip=list(skip), settle=outputs),
           as_json, quiet)


def _read_input_file(path: Path) -> dict[str, Any]:
    from podium.core.errors import InputError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read inputs: {e}", "use a UTF-8 JSON or TOML file") \
            from None
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
    from podium.tui.views import print_runs, run_summary

    store = open_store()
    wanted = None if status == "interrupted" else status
    items = store.list_runs(limit=limit, status="running" if status == "interrupted"
                            else wanted)
    if status in ("running", "interrupted"):
        items = [r for r in items if r.shown_status == status]
    if as_json:
        emit_json([run_summary(store, r) for r in items])
    elif not items and status:
        click.echo(f"no {status} runs")
    else:
        print_runs(store, items)


@cli.command()
@click.argument("run_id", metavar="[RUN]", default="last")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option("--full", is_flag=True, help="Whole outputs, not previews.")
@friendly
def show(run_id: str, as_json: bool, full: bool) -> None:
    """Every step of RUN: status, model, tokens, latency and output.

    RUN is an id, a unique prefix of one, or `last` (the default: the newest run).
    """
    from podium.tui.views import print_run, run_json

    store = open_store()
    run = store.get_run(run_id)
    if as_json:
        emit_json(run_json(store, run))
    else:
        print_run(store, run, full=full)


def _register() -> None:
    from podium.tui.cli_app import tui
    from podium.tui.cli_batch import batch
    from podium.tui.cli_calibrate import calibrate
    from podium.tui.cli_models import chat, compare, models, route
    from podium.tui.cli_recipes import recipe
    from podium.tui.cli_retrieval import index, search
    from podium.tui.cli_review import edit, rerun, review

    for command in (review, edit, rerun, models, route, chat, compare, recipe, tui, batch,
                    calibrate):
        cli.add_command(command)
    cli.add_command(index)
    cli.add_command(search)


_register()


def show_cursor() -> None:
    """Make the terminal's cursor visible. Live progress hides it while it draws; a run
    killed then (kill -9, a closed laptop) cannot show it again, so every command does,
    first. Idempotent, and only on a terminal: pipes and files never see the escape."""
    for stream in (sys.stderr, sys.stdout):
        try:
            if stream.isatty() and os.environ.get("TERM") != "dumb":
                stream.write("\x1b[?25h")
                stream.flush()
                return
        except (OSError, ValueError):  # a closed or odd stream: nothing to restore there
            continue


def main() -> None:
    """Console entry point."""
    # Pydantic looks for plugins by scanning every installed package's entry points
    # (~10 ms at each start); Podium uses none. An explicit setting still wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    show_cursor()
    cli(prog_name="podium")


if __name__ == "__main__":
    main()
