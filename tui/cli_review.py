"""`podium review ...`, `podium edit` and `podium rerun`: people in the loop.

A decision is recorded first, then the run carries on: in this process when the run
was left waiting (or its process was killed), or in the process already running it
(which looks for decisions while it works). `--no-resume` only records the decision.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click

from podium.tui.cli_common import drive, emit_json, friendly, open_store
from podium.tui.views import QUIET_HELP, review_json


def _age(ts: float) -> str:
    s = max(0, int(time.time() - ts))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def _what(r: Any) -> str:
    if r.kind == "budget":
        return f"budget before {r.step_id}"
    if r.kind == "tool":
        return f"{r.step_id} (tool call)"
    item = f"[{r.item}]" if r.item is not None else ""
    return f"{r.step_id} ({r.of_step}{item})"


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, indent=2,
                                                           ensure_ascii=False)


def _fits(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A review id past SQLite's integers is no review (the store would overflow)."""
    digits = value.strip().lstrip("+-")
    if digits.isdigit() and len(digits) > 18:
        raise click.BadParameter(f"no review {value.strip()}: ids are far smaller; list them "
                                 "with: podium review --all")
    return value


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not an amount: give a positive number")
    return value


_review_id = click.argument("review_id", metavar="ID", callback=_fits)

@click.group(invoke_without_command=True)
@click.option("--run", "run_id", metavar="RUN", help="Only items of this run.")
@click.option("--all", "show_all", is_flag=True, help="Decided items too, not only pending.")
@click.option("--json", "as_json", is_flag=True, help="JSON array.")
@click.pass_context
@friendly
def review(ctx: click.Context, run_id: str | None, show_all: bool, as_json: bool) -> None:
    """The review queue: outputs waiting for a person, oldest first.

    \b
    podium review                      what waits, with ids
    podium review show ID              the whole output and the instructions
    podium review approve ID           pass it on unchanged
    podium review edit ID              change it in $EDITOR (or --value / --file)
    podium review reject ID -f TEXT    send it back with feedback
    """
    if ctx.invoked_subcommand is not None:
        return
    from podium.tui.progress import preview

    store = open_store()
    rid = store.get_run(run_id).id if run_id else None
    items = store.reviews(status=None if show_all else "pending", run_id=rid)
    if as_json:
        emit_json([review_json(r) for r in items])
        return
    if not items:
        click.echo("nothing waits for review" if not show_all else "no review items yet")
        return
    click.echo(f"{'ID':>4}  {'RUN':<13} {'STEP':<28} {'STATUS':<9} {'AGE':>4}  PREVIEW")
    for r in items:
        # What the run went on with: the edit, once a person edited the item.
        shown = (r.decided if r.status == "edited" else r.original) if r.kind != "budget" \
            else (
            f"{r.original['spent']} of {r.original['cap']} "
            f"{'USD' if r.original['what'] == 'cost' else 'tokens'} used")
        click.echo(f"{r.id:>4}  {r.run_id:<13} {_what(r)[:28]:<28} {r.status:<9} "
                   f"{_age(r.created_at):>4}  {preview(shown, 60)}")
    if not show_all:
        click.echo("\nsee one: podium review show ID · decide: podium review approve|edit|"
                   "reject ID")


@review.command("show")
@_review_id
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@friendly
def show_item(review_id: str, as_json: bool) -> None:
    """Everything about review item ID: the output, the instructions, the decision."""
    store = open_store()
    r = store.review(review_id)
    if as_json:
        emit_json(review_json(r))
        return
    run = store.get_run(r.run_id)
    click.secho(f"review {r.id} · {r.status} · run {r.run_id} ({run.recipe_name})", bold=True)
    if r.kind == "budget":
        click.echo(f"  the run reached its budget before step '{r.step_id}'")
    elif r.kind == "tool":
        click.echo(f"  step '{r.step_id}' asks to call a tool · asked {_age(r.created_at)} ago")
    else:
        item = f", item {r.item}" if r.item is not None else ""
        click.echo(f"  gate '{r.step_id}' reviews '{r.of_step}'{item} · round {r.round}"
                   f" · asked {_age(r.created_at)} ago")
    if r.instructions:
        click.secho("\ninstructions:", bold=True)
        click.echo(r.instructions)
    click.secho({"budget": "\nspent:", "tool": "\narguments:"}.get(r.kind, "\noutput:"),
                bold=True)
    click.echo(_text(r.original))
    if r.status != "pending":
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.decided_at or 0))
        click.secho(f"\n{r.status} by {r.decided_by} at {when}", bold=True)
        if r.feedback:
            click.echo(f"feedback: {r.feedback}")
        if r.status == "edited":
            click.secho("the run went on with:", bold=True)
            click.echo(_text(r.decided))
    elif r.kind == "budget":
        tokens = (r.original or {}).get("what") == "tokens"
        click.echo(f"\napprove with more: podium review approve {r.id} --budget "
                   + ("TOKENS" if tokens else "USD"))
        if not tokens:
            click.echo(f"keep the rest local: podium review approve {r.id} --local")
        click.echo(f"stop the run:        podium review reject {r.id}")
    else:
        said = "REASON (the agent reads it)" if r.kind == "tool" else "TEXT"
        click.echo(f"\napprove: podium review approve {r.id}\nedit:    podium review edit "
                   f"{r.id}\nreject:  podium review reject {r.id} --feedback {said}")


_resume_option = click.option("--no-resume", is_flag=True,
                              help="Only record the decision; do not continue the run.")
_json_option = click.option("--json", "as_json", is_flag=True,
                            help="One JSON object: the decision and the run.")
_quiet_option = click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)


def _decide(review_id: str, action: str, no_resume: bool, as_json: bool, quiet: bool,
            **details: Any) -> None:
    """Record the decision, then continue the run if it was left waiting."""
    from podium.core.config import load_settings
    from podium.core.errors import PodiumError
    from podium.core.models.calibrate import review_learner
    from podium.core.review.decisions import decide

    store = open_store()
    try:
        learn = review_learner(store, load_settings())
    except PodiumError:  # a config that does not load costs the router a lesson, not this
        learn = None
    record = decide(store, review_id, action, learn=learn, **details)
    summary = review_json(record)
    run = store.get_run(record.run_id)
    if not (as_json or quiet):
        click.secho(f"review {record.id}: {record.status}", fg="green", err=True)
    if (run.status == "waiting" or run.orphaned) and not no_resume:
        drive(store, lambda engine: engine.proceed(run.id), as_json, quiet,
              extra={"review": summary})
        return
    if run.status == "running" and not run.orphaned:
        note = f"run {run.id} is running (process {run.pid}); it picks up the decision"
    else:
        note = f"run {run.id} is {run.shown_status}; continue it with: podium resume {run.id}"
    if as_json:
        emit_json({"review": summary, "run_id": run.id, "status": run.shown_status,
                   "outputs": run.outputs})
    elif not quiet:
        click.echo(note, err=True)


@review.command()
@_review_id
@click.option("--budget", "amount", type=float, metavar="AMOUNT", callback=_finite,
              help="Budget review: add this much (USD, or tokens for a token cap).")
@click.option("--local", is_flag=True, help="Budget review: run the rest on this machine.")
@click.option("-f", "--feedback", help="A note kept with the decision.")
@_resume_option
@_json_option
@_quiet_option
@friendly
def approve(review_id: str, amount: float | None, local: bool, feedback: str | None,
            no_resume: bool, as_json: bool, quiet: bool) -> None:
    """Pass item ID on unchanged (or, for a budget review, continue)."""
    _decide(review_id, "approve", no_resume, as_json, quiet, amount=amount, local=local,
            feedback=feedback)


@review.command("edit")
@_review_id
@click.option("--value", help="The new output (text, or JSON for a structured step).")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
              help="Read the new output from a file.")
@click.option("-f", "--feedback", help="A note kept with the decision.")
@_resume_option
@_json_option
@_quiet_option
@friendly
def edit_item(review_id: str, value: str | None, path: str | None, feedback: str | None,
              no_resume: bool, as_json: bool, quiet: bool) -> None:
    """Change item ID's output, then pass it on. Without --value or --file, opens
    $EDITOR on the output."""
    if value is None:
        from podium.core.errors import ReviewError

        store = open_store()
        r = store.review(review_id)
        if r.status != "pending":  # say so before opening an editor, not after
            raise ReviewError(f"review {r.id} was already decided: {r.status}",
                              "a decision is final")
        if r.kind == "budget":
            raise ReviewError(f"review {r.id} is a budget review: there is no output to edit",
                              f"approve {r.id} --budget N, or reject {r.id} to stop the run")
        typed = path is None
        value = _read_value(path, r.original)
        if typed:
            try:
                _decide(review_id, "edit", no_resume, as_json, quiet, value=value,
                        feedback=feedback)
            except ReviewError as e:
                _keep_on_error(value, ".txt" if isinstance(r.original, str) else ".json", e)
                raise
            return
    _decide(review_id, "edit", no_resume, as_json, quiet, value=value, feedback=feedback)


@review.command()
@_review_id
@click.option("-f", "--feedback",
              help="What is wrong: given to the model when the step runs again (needed "
              "when it does).")
@_resume_option
@_json_option
@_quiet_option
@friendly
def reject(review_id: str, feedback: str | None, no_resume: bool, as_json: bool,
           quiet: bool) -> None:
    """Send item ID back: the reviewed step runs again with the feedback (or the gate
    fails, as the recipe says). For an item of a map or ensemble: drop it. For a
    budget review: stop the run."""
    _decide(review_id, "reject", no_resume, as_json, quiet, feedback=feedback)


@review.command()
@_review_id
@click.option("-f", "--feedback", help="What to do better, given to the model.")
@_resume_option
@_json_option
@_quiet_option
@friendly
def regenerate(review_id: str, feedback: str | None, no_resume: bool, as_json: bool,
               quiet: bool) -> None:
    """Make one item of a map or ensemble again (then review it again)."""
    _decide(review_id, "regenerate", no_resume, as_json, quiet, feedback=feedback)


def _read_value(path: str | None, original: Any) -> str:
    from podium.core.errors import InputError

    if path is not None:
        try:
            return Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read {path}: {e}", "give a UTF-8 text file") from None
    import os
    import sys

    if not (os.environ.get("VISUAL") or os.environ.get("EDITOR")) and not sys.stdin.isatty():
        raise InputError("no $EDITOR and no terminal to open one in",
                         "give the new output with --value TEXT or --file F")
    suffix = ".txt" if isinstance(original, str) else ".json"
    try:
        edited = click.edit(_text(original), extension=suffix)
    except click.ClickException as e:
        raise InputError(f"the editor failed: {e.message}",
                         "check $EDITOR, or give --value TEXT or --file F") from None
    if edited is None:
        raise InputError("the editor closed without a change; nothing was decided",
                         "save the file before closing the editor, or use --value")
    return edited


def _keep_on_error(text: str, suffix: str, error: Exception) -> None:
    """A person's edit that was refused is saved, so fixing it does not mean typing it
    all again."""
    import tempfile

    from podium.core.errors import PodiumError

    fd, path = tempfile.mkstemp(prefix="podium-edit-", suffix=suffix)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    if isinstance(error, PodiumError):
        error.hint = (error.hint + "; " if error.hint else "") + \
            f"your text is saved in {path}: fix it, then use --file {path}"


# --- edit / rerun ------------------------------------------------------------------------


@click.command()
@click.argument("run_id", metavar="RUN")
@click.argument("step_id", metavar="STEP")
@click.option("--value", help="The new output (text, or JSON for a structured step).")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
              help="Read the new output from a file.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@friendly
def edit(run_id: str, step_id: str, value: str | None, path: str | None,
         as_json: bool) -> None:
    """Change the output of finished step STEP of RUN by hand.

    The edit is stored as a new version beside the original, and every step
    downstream becomes stale; `podium rerun RUN` recomputes only those, as a new run.
    Without --value or --file, opens $EDITOR on the output.
    """
    from podium.core.errors import ReviewError
    from podium.core.review.edits import edit_output, editable

    store = open_store()
    typed = value is None and path is None
    if value is None:
        _, record, _, _ = editable(store, run_id, step_id)  # say what is wrong before $EDITOR
        value = _read_value(path, record.output)
    try:
        done = edit_output(store, run_id, step_id, value)
    except ReviewError as e:
        if typed:
            _keep_on_error(value, ".json" if value.lstrip()[:1] in "[{" else ".txt", e)
        raise
    # Every step downstream is marked, but only those that had an output are out of
    # date; one the branch skipped has nothing to recompute (a rerun reconsiders it).
    had = {s.step_id for s in store.get_steps(done.run_id) if s.has_output}
    stale = [s for s in done.stale if s in had]
    if as_json:
        emit_json({"run_id": done.run_id, "step_id": step_id,
                   "status": "unchanged" if done.version is None else "edited",
                   "version": done.version, "stale": stale})
        return
    if done.version is None:
        click.echo(f"{step_id} of run {done.run_id} is unchanged; nothing stored")
        return
    click.secho(f"edited {step_id} of run {done.run_id} (version {done.version})", fg="green")
    if stale:
        click.echo("stale now: " + ", ".join(stale))
        click.echo(f"hint: recompute them with: podium rerun {done.run_id}")


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option("--from", "from_step", metavar="STEP",
              help="Also recompute this step and everything after it, stale or not "
              "(from the cache where nothing they depend on changed).")
@click.option("--no-cache", is_flag=True,
              help="Run the recomputed steps again even where the cache has them.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object at the end.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
@friendly
def rerun(run_id: str, from_step: str | None, no_cache: bool, as_json: bool,
          quiet: bool) -> None:
    """Recompute what is out of date in RUN as a new run linked to it.

    Steps made stale by an edit, steps that did not succeed and (with --from) a
    chosen step, plus everything downstream of them, run again; the rest is kept.
    A recomputed step whose cache key (definition, inputs, models) is unchanged is
    taken from the cache and says so. RUN itself is never changed.
    """
    from podium.core.run.reruns import out_of_date

    store = open_store()
    old = store.get_run(run_id)
    _, _, redo = out_of_date(store, old.id, from_step)
    if not redo:
        if as_json:
            emit_json({"run_id": old.id, "status": "up_to_date", "outputs": old.outputs,
                       "rerun": None})
        else:  # a warning, like resume's 'already succeeded': shown even with -q
            click.secho(f"nothing in run {old.id} is out of date; recompute a step anyway "
                        "with --from STEP", fg="yellow", err=True)
        return
    drive(store, lambda engine: engine.rerun(old.id, from_step=from_step,
                                             use_cache=not no_cache),
          as_json, quiet, extra={"parent_run_id": old.id})
