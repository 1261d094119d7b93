"""How runs and steps look on the command line, as text and as JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from podium.tui.progress import ICONS, preview


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _duration(run: Any) -> float | None:
    if run.started_at and run.finished_at:
        return float(run.finished_at - run.started_at)
    return None


def run_summary(run: Any) -> dict[str, Any]:
    """A run's row as JSON."""
    return {"run_id": run.id, "recipe": run.recipe_name, "status": run.shown_status,
            "created_at": run.created_at, "duration_s": _duration(run),
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
    return {**run_summary(run), "outputs": run.outputs, "inputs": _inputs_brief(run.inputs),
            "recipe_hash": run.recipe_hash, "recipe_path": run.recipe_path,
            "hint": run.hint, "waiting_for": [r.id for r in store.reviews(run_id=run.id)],
            "reviews": [review_json(r) for r in store.reviews(status=None, run_id=run.id)],
            "steps": [step_json(s, orphaned) for s in steps]}


def _inputs_brief(inputs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in inputs.items():
        if isinstance(v, dict) and "text" in v and "path" in v:
            out[k] = {"path": v["path"], "chars": len(v["text"])}
        else:
            out[k] = v
    return out


def print_runs(runs: list[Any]) -> None:
    """A table of runs."""
    if not runs:
        click.echo("no runs yet: try `podium run document-pipeline`")
        return
    click.echo(f"{'RUN':<13} {'RECIPE':<22} {'STATUS':<12} {'STARTED':<19} {'TIME':>7} "
               f"{'TOKENS':>7}")
    for r in runs:
        d = _duration(r)
        click.echo(f"{r.id:<13} {r.recipe_name[:22]:<22} {r.shown_status:<12} "
                   f"{_when(r.created_at):<19} {f'{d:.1f}s' if d else '-':>7} "
                   f"{r.input_tokens + r.output_tokens:>7}"
                   + (f"  rerun of {r.parent_run_id}" if r.parent_run_id else ""))


def print_run(store: Any, run: Any, *, full: bool = False) -> None:
    """A run and its steps, for people."""
    orphaned = run.orphaned
    d = _duration(run)
    click.secho(f"run {run.id} · {run.recipe_name} · {run.shown_status}", bold=True)
    click.echo(f"  started {_when(run.created_at)}" + (f" · {d:.2f}s" if d else "") +
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
        if s.attempts > 1:
            bits.append(f"{s.attempts} attempts")
        if (s.version or 1) > 1:
            bits.append(f"edited (version {s.version})")
        click.echo("  ".join(bits))
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
            click.echo(f"    resume retries it: podium resume {run.id} "
                       f"(or --skip {s.step_id} / --output {s.step_id}=TEXT)")
        if s.error:
            click.secho(f"    error: {s.error}", fg="red")
            if s.hint:
                click.echo(f"    hint: {s.hint}")
        if s.reason:
            label = "skipped" if status == "skipped" else "note"
            click.secho(f"    {label}: {s.reason}", dim=True)
        if s.stale:
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
    if any(s.stale for s in store.get_steps(run.id)):
        click.echo(f"\nrecompute the stale steps with: podium rerun {run.id}")


def _full(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def print_outputs(store: Any, run: Any) -> None:
    """The end of `podium run`: outputs on stdout, a summary line on stderr."""
    for name, value in (run.outputs or {}).items():
        click.secho(f"{name}:", bold=True)
        click.echo(_full(value) if value is not None else "(none)")
    d = _duration(run)
    color = {"succeeded": "green", "failed": "red"}.get(run.status, "yellow")
    click.secho(f"\nrun {run.id} {run.status}" + (f" in {d:.2f}s" if d else "") +
                f" · {run.input_tokens + run.output_tokens} tokens · details: podium show "
                f"{run.id}", fg=color, err=True)
    if run.status == "waiting":
        for r in store.reviews(run_id=run.id):
            what = f"budget before {r.step_id}" if r.kind == "budget" else \
                f"{r.step_id} reviews {r.of_step}" + (f"[{r.item}]" if r.item is not None
                                                       else "")
            click.secho(f"  waiting: review {r.id} ({what}): podium review show {r.id}",
                        fg="yellow", err=True)
    if run.status == "failed":
        for s in store.get_steps(run.id):
            if s.status == "failed":
                click.secho(f"  {s.step_id}: {s.error}", fg="red", err=True)
                if s.hint:
                    click.echo(f"  hint: {s.hint}", err=True)
