"""How runs and steps look on the command line, as text and as JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from podium.tui.progress import ICONS, named, plural, preview

QUIET_HELP = "Only the outputs: no progress, no summary (errors still go to stderr)."


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def timing(store: Any, run: Any) -> tuple[float | None, float]:
    """(working seconds, seconds spent waiting for a person) of a run that has ended or
    paused; (None, 0) while it runs or after its process was killed.

    The store keeps when a run first started and when it last ended, not when it
    paused and went on, so the waits are rebuilt from what it does keep: each review
    item waits from when it was asked until the first attempt that started after its
    decision (the run going on), less the time other branches' attempts worked then."""
    if run.started_at is None or run.finished_at is None:
        return None, 0.0
    wall = (run.started_at, run.finished_at)
    reviews = store.reviews(status=None, run_id=run.id)
    if not reviews:
        return float(run.finished_at - run.started_at), 0.0
    work = _work(store, run.id)
    starts = sorted(a for a, _ in work)
    waits = []
    for r in reviews:
        end = wall[1]
        if r.decided_at is not None:
            end = next((t for t in starts if t >= r.decided_at), end)
        waits.append((r.created_at, end))
    waits = _clip(_merged(waits), wall)
    waited = _length(waits) - _length(_overlap(waits, _merged(work)))
    return max(0.0, float(wall[1] - wall[0]) - waited), max(0.0, waited)


def _work(store: Any, run_id: str) -> list[tuple[float, float]]:
    """When the run's steps worked: each finished attempt's span, review gates' left
    out (theirs is the wait). An attempt a killed process left in doubt is left out:
    its end is when it was found, not when it stopped.

    The store has no reader for attempts (a step's own span covers all its rounds,
    waits between them included), so its table is read here, read-only; each step's
    span is the fallback."""
    import sqlite3

    steps = store.get_steps(run_id)
    kinds = {s.step_id: s.kind for s in steps}
    try:
        rows = [(r["step_id"], r["status"], r["started_at"], r["finished_at"])
                for r in store.db["attempts"].rows_where(
                    "run_id = ?", [run_id], select="step_id, status, started_at, finished_at")]
    except (AttributeError, KeyError, sqlite3.Error):
        rows = [(s.step_id, s.status, s.started_at, s.finished_at) for s in steps]
    return [(a, b) for sid, status, a, b in rows
            if kinds.get(sid) != "review" and status != "in_doubt" and a is not None
            and b is not None]


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(x for x in spans if x[1] > x[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _clip(spans: list[tuple[float, float]], to: tuple[float, float]) -> list[tuple[float, float]]:
    return [(max(a, to[0]), min(b, to[1])) for a, b in spans if min(b, to[1]) > max(a, to[0])]


def _overlap(xs: list[tuple[float, float]],
             ys: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Where two sorted, merged lists of spans overlap."""
    return [span for y in ys for span in _clip(xs, y)]


def _length(spans: list[tuple[float, float]]) -> float:
    return sum(b - a for a, b in spans)


def span(seconds: float) -> str:
    """A length of time for people: `0.42s`, `3m 05s`, `2h 10m`, `3d 04h`."""
    if seconds < 60:
        return f"{seconds:.2f}s"
    s = int(seconds)
    for size, unit, rest, rest_unit in ((86400, "d", 3600, "h"), (3600, "h", 60, "m"),
                                        (60, "m", 1, "s")):
        if s >= size:
            return f"{s // size}{unit} {(s % size) // rest:02d}{rest_unit}"
    return f"{seconds:.2f}s"  # not reached


def run_summary(store: Any, run: Any) -> dict[str, Any]:
    """A run's row as JSON. `duration_s` is working time: without `waited_s`, the
    time it spent waiting for a person."""
    working, waited = timing(store, run)
    return {"run_id": run.id, "recipe": run.recipe_name, "status": run.shown_status,
            "created_at": run.created_at,
            "duration_s": None if working is None else round(working, 3),
            "waited_s": round(waited, 3),
            "input_tokens": run.input_tokens, "output_tokens": run.output_tokens,
            "cost": run.cost, "error": run.error, "parent_run_id": run.parent_run_id}


def step_json(s: Any, orphaned: bool = False) -> dict[str, Any]:
    """A step as JSON."""
    return {"step_id": s.step_id, "kind": s.kind, "status": _step_status(s, orphaned),
            "model": s.model, "tier": s.tier, "route": s.route,
            "input_tokens": s.input_tokens, "output_tokens": s.output_tokens, "cost": s.cost,
            "latency_ms": None if s.latency_ms is None else round(s.latency_ms, 2),
            "attempts": s.attempts, "output": s.output, "partial_output": s.partial_output,
            "error": s.error, "hint": s.hint, "reason": s.reason, "stale": s.stale,
            "version": s.version or 1}


def review_json(r: Any) -> dict[str, Any]:
    """A review item as JSON."""
    return {"id": r.id, "run_id": r.run_id, "step_id": r.step_id, "of_step": r.of_step,
            "item": r.item, "kind": r.kind, "round": r.round, "status": r.status,
            "instructions": r.instructions, "original": r.original, "decided": r.decided,
            "feedback": r.feedback, "action": r.action, "amount": r.amount,
            "created_at": r.created_at, "decided_at": r.decided_at,
            "decided_by": r.decided_by}


def _step_status(s: Any, orphaned: bool) -> str:
    # A step still `running` in a run whose process is gone is in doubt.
    return "in_doubt" if s.status == "running" and orphaned else s.status


def run_json(store: Any, run: Any) -> dict[str, Any]:
    """A run with every step, as one JSON object."""
    steps = store.get_steps(run.id)
    orphaned = run.orphaned
    return {**run_summary(store, run), "outputs": run.outputs, "inputs": _inputs_brief(run.inputs),
            "recipe_hash": run.recipe_hash, "recipe_path": run.recipe_path,
            "hint": run.hint, "waiting_for": [r.id for r in store.reviews(run_id=run.id)],
            "reviews": [review_json(r) for r in store.reviews(status=None, run_id=run.id)],
            "steps": [_with_transcript(store, run.id, step_json(s, orphaned)) for s in steps]}


def _with_transcript(store: Any, run_id: str, step: dict[str, Any]) -> dict[str, Any]:
    """An agent's or team's step with every message and tool call it stored."""
    if step["kind"] in ("agent", "team"):
        step["transcript"] = [e.to_json() for e in store.messages(run_id, step["step_id"])]
    return step


def _inputs_brief(inputs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in inputs.items():
        if isinstance(v, dict) and "text" in v and "path" in v:
            out[k] = {"path": v["path"], "chars": len(v["text"])}
        else:
            out[k] = v
    return out


def print_runs(store: Any, runs: list[Any]) -> None:
    """A table of runs; TIME is working time, not time spent waiting for a person."""
    if not runs:
        click.echo("no runs yet: try `podium run document-pipeline`")
        return
    click.echo(f"{'RUN':<13} {'RECIPE':<22} {'STATUS':<12} {'STARTED':<19} {'TIME':>7} "
               f"{'TOKENS':>7}")
    for r in runs:
        d, _ = timing(store, r)
        shown = "-" if d is None else f"{d:.1f}s" if d < 60 else span(d).replace(" ", "")
        click.echo(f"{r.id:<13} {r.recipe_name[:22]:<22} {r.shown_status:<12} "
                   f"{_when(r.created_at):<19} {shown:>7} "
                   f"{r.input_tokens + r.output_tokens:>7}"
                   + (f"  rerun of {r.parent_run_id}" if r.parent_run_id else ""))


def print_run(store: Any, run: Any, *, full: bool = False) -> None:
    """A run and its steps, for people."""
    orphaned = run.orphaned
    click.secho(f"run {run.id} · {run.recipe_name} · {run.shown_status}", bold=True)
    working, waited = _took(store, run)
    click.echo(f"  started {_when(run.created_at)}" + (f" · {working}" if working else "")
               + (f" working{waited}" if waited else "") +
               f" · {run.input_tokens} in / {run.output_tokens} out tokens"
               + (f" · ${run.cost:.4f}" if run.cost else ""))
    click.echo(f"  recipe {run.recipe_path} @ {run.recipe_hash[:12]}")
    if run.parent_run_id:
        click.echo(f"  rerun of {run.parent_run_id}")
    if run.error:
        click.secho(f"  {run.error}", fg="red")
    click.echo()
    for s in store.get_steps(run.id):
        status = _step_status(s, orphaned)
        icon = ICONS.get(status, "?")
        bits = [f"{icon} {s.step_id:<18} {s.kind:<9} {status:<9}"]
        if s.model:
            bits.append(s.model)
        if s.input_tokens or s.output_tokens:
            bits.append(f"{s.input_tokens}+{s.output_tokens} tok")
        if s.latency_ms is not None:
            bits.append(f"{s.latency_ms / 1000:.2f}s")
        if s.attempts > 1 and s.kind != "review":  # a gate's are its pauses, not retries
            bits.append(plural(s.attempts, "attempt"))
        if (s.version or 1) > 1:
            bits.append(f"edited (version {s.version})")
        click.echo("  ".join(bits))
        if s.kind in ("agent", "team"):
            from podium.tui.transcript import print_transcript

            print_transcript(store.messages(run.id, s.step_id), full=full)
        if s.has_output:
            text = _full(s.output) if full else preview(s.output, 100)
            click.echo("    " + text.replace("\n", "\n    "))
        if s.route and s.route.get("reasons"):
            click.secho("    route: " + "; ".join(s.route["reasons"]), dim=True)
        if status in ("in_doubt", "cancelled") and s.partial_output:
            partial = s.partial_output if full else preview(s.partial_output, 100)
            click.echo("    partial: " + partial.replace("\n", "\n    "))
        if status == "in_doubt":
            click.secho("    in doubt: the process died while this step ran", fg="yellow")
            kept = store.item_counts(run.id).get(s.step_id)
            if kept:
                click.echo(f"    {plural(kept, 'item')} finished and kept: a resume makes "
                           "only the rest")
            click.echo(f"    resume retries it: podium resume {run.id} "
                       f"(or --skip {s.step_id} / --output {s.step_id}=TEXT)")
        if s.error:
            click.secho(f"    error: {s.error}", fg="red")
            if s.hint:
                click.echo(f"    hint: {s.hint}")
        if s.reason:
            label = "skipped" if status == "skipped" else "note"
            click.secho(f"    {label}: {s.reason}", dim=True)
        if s.stale and s.has_output:  # a step that was skipped has nothing out of date
            click.secho(f"    stale: {s.stale}", fg="yellow")
        if s.kind == "review":
            for r in store.reviews(status=None, run_id=run.id, step_id=s.step_id):
                said = f": {preview(r.feedback, 60)}" if r.feedback else ""
                item = f" item {r.item}" if r.item is not None else ""
                who = f" by {r.decided_by}" if r.decided_by else ""
                click.secho(f"    review {r.id}{item} (round {r.round}): {r.status}{who}{said}",
                            fg="yellow" if r.status == "pending" else None, dim=r.status
                            != "pending")
        if status == "waiting":
            asked = store.reviews(run_id=run.id, step_id=s.step_id)
            ids = ", ".join(str(r.id) for r in asked) or "?"
            click.secho(f"    waiting for a person: podium review show {ids}", fg="yellow")
    if run.shown_status in ("interrupted", "cancelled", "failed"):
        click.echo(f"\ncontinue with: podium resume {run.id}")
    if any(s.stale and s.has_output for s in store.get_steps(run.id)):
        click.echo(f"\nrecompute the stale steps with: podium rerun {run.id}")


def _full(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def _took(store: Any, run: Any) -> tuple[str, str]:
    """(working time, `, plus 5.00s waiting for a person` or ""), or ("", "") while the
    run has neither ended nor paused."""
    working, waited = timing(store, run)
    if working is None:
        return "", ""
    return span(working), (f", plus {span(waited)} waiting for a person"
                           if waited >= 0.01 else "")


def _quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.params.get("quiet"))


def print_outputs(store: Any, run: Any, *, quiet: bool | None = None) -> None:
    """The end of `podium run`: outputs on stdout, then a summary line and what the run
    waits for on stderr. `quiet` (default: the command's `-q`) prints only the outputs
    and what failed."""
    quiet = _quiet() if quiet is None else quiet
    for name, value in (run.outputs or {}).items():
        click.secho(f"{name}:", bold=True)
        click.echo(_full(value) if value is not None else "(none)")
    color = {"succeeded": "green", "failed": "red"}.get(run.status, "yellow")
    tokens = plural(run.input_tokens + run.output_tokens, "token")
    if not quiet:
        working, waited = _took(store, run)
        if run.status == "waiting":
            said = "is waiting for a person" + (f" after {working} of work" if working else "")
        else:
            said = run.status + (f" in {working}{waited}" if working else "")
        click.secho(f"\nrun {run.id} {said} · {tokens} · details: podium show {run.id}",
                    fg=color, err=True)
    if run.status == "waiting" and not quiet:
        for r in store.reviews(run_id=run.id):
            what = f"budget before {r.step_id}" if r.kind == "budget" else \
                f"{r.step_id} reviews {r.of_step}" + (f"[{r.item}]" if r.item is not None
                                                       else "")
            click.secho(f"  waiting: review {r.id} ({what}): podium review show {r.id}",
                        fg="yellow", err=True)
    if run.status == "failed":
        for s in store.get_steps(run.id):
            if s.status == "failed":
                # Under the summary line, indented; alone (quiet), as `error:` lines.
                click.secho(f"{'error: ' if quiet else '  '}{named(s.step_id, s.error)}",
                            fg="red", err=True)
                if s.hint:
                    click.echo(f"{'' if quiet else '  '}hint: {s.hint}", err=True)
