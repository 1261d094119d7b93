"""`podium batch`: a recipe over a dataset (JSON Lines, CSV, a folder of files), each
row its own stored run; status, resume and export of a batch.

`podium batch RECIPE DATA` is `podium batch run RECIPE DATA`.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from podium.tui.cli_common import EXIT, emit_json, friendly, open_store, parse_pairs
from podium.tui.views import QUIET_HELP


class DefaultRun(click.Group):
    """A group whose first argument, when it is not a subcommand, starts `run`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultRun, invoke_without_command=True)
@click.pass_context
def batch(ctx: click.Context) -> None:
    """Run a recipe over every row of a dataset, each row a stored run.

    \b
      podium batch run RECIPE DATA       DATA: .jsonl, .csv or a folder of files
      podium batch status [BATCH]        counts, and the rows not done
      podium batch resume BATCH          rows never started or in doubt; decided reviews
      podium batch export BATCH          one line per row: inputs, status, outputs, error
      podium batch list                  batches, newest first
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _executor_options(fn: Any) -> Any:
    fn = click.option("--address", metavar="ADDR",
                      help="Ray cluster to join (host:port or ray://host:port); default: "
                      "a cluster on this machine.")(fn)
    fn = click.option("--workers", type=click.IntRange(1, 4096), default=None,
                      help="Ray workers (one actor each); default: the cluster's CPUs.")(fn)
    fn = click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                      show_default=True, help="Where rows run.")(fn)
    fn = click.option("-c", "--concurrency", type=click.IntRange(1, 10_000), default=8,
                      show_default=True, help="Rows in flight at once (per worker on Ray).")(fn)
    return fn


@batch.command("run")
@click.argument("recipe")
@click.argument("data", type=click.Path())
@click.option("--map", "mapping", multiple=True, metavar="COLUMN=INPUT",
              help="Feed column COLUMN to input INPUT (repeatable); for a folder, "
              "file=INPUT names the input each file fills.")
@click.option("-n", "--limit", type=click.IntRange(1, None), help="Only the first N rows.")
@_executor_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
@friendly
def run(recipe: str, data: str, mapping: tuple[str, ...], limit: int | None,
        concurrency: int, executor: str, workers: int | None, address: str | None,
        as_json: bool, quiet: bool) -> None:
    """Run RECIPE once per row of DATA, and store the batch.

    DATA is a .jsonl file (one object of inputs a line), a .csv file (a header row of
    input names) or a folder (each file fills the recipe's one file or text input).
    """
    from podium.core.batch.data import read_dataset
    from podium.core.batch.runner import create_batch
    from podium.tui.cli_recipes import load_recipe

    loaded = load_recipe(recipe)
    columns = parse_pairs(mapping, "--map")
    chosen = _executor(executor, address, workers)  # before anything is stored
    dataset = read_dataset(data, loaded, columns, limit=limit)
    if dataset.unused and not quiet:
        click.echo(f"note: no input takes the column(s) {', '.join(dataset.unused)}; "
                   "ignored (rename with --map COLUMN=INPUT)", err=True)
    store = open_store()
    batch_id = create_batch(store, loaded, dataset, executor=executor,
                            concurrency=concurrency, mapping=columns)
    if not quiet and not as_json:
        click.echo(f"batch {batch_id} · {loaded.name} · {len(dataset.rows)} rows from "
                   f"{dataset.path} · {executor}", err=True)
    for row in dataset.rows:  # unreadable rows are stored as skipped; the rest run
        if row.problem:
            click.secho(f"  ↷ row {row.index} skipped: {row.problem}", fg="yellow", err=True)
    _drive(store, batch_id, loaded, chosen, concurrency, as_json, quiet, retry_failed=False)


@batch.command()
@click.argument("batch_id", metavar="BATCH")
@click.option("--retry-failed", is_flag=True, help="Also run failed rows again (their "
              "finished steps are kept).")
@_executor_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
@friendly
def resume(batch_id: str, retry_failed: bool, concurrency: int, executor: str,
           workers: int | None, address: str | None, as_json: bool, quiet: bool) -> None:
    """Carry BATCH on: rows never started, rows in doubt after a kill, rows whose review
    was decided. Rows done are never run again."""
    from podium.core.recipe.load import loads

    store = open_store()
    record = store.get_batch(batch_id)
    _, path, source = store.recipe_source(record.recipe_hash)
    recipe = loads(source, path, checked=True)
    chosen = _executor(executor, address, workers)
    _drive(store, record.id, recipe, chosen, concurrency, as_json, quiet,
           retry_failed=retry_failed)


def _executor(name: str, address: str | None, workers: int | None) -> Any:
    """The executor asked for (a Ray one is checked for Ray and its address now)."""
    if name == "local":
        if address or workers:
            from podium.core.errors import InputError

            raise InputError("--address and --workers are for --executor ray")
        return None  # built with the engine
    from podium.providers.ray_batch import RayExecutor

    return RayExecutor(address=address, workers=workers)


def _drive(store: Any, batch_id: str, recipe: Any, chosen: Any, concurrency: int,
           as_json: bool, quiet: bool, *, retry_failed: bool) -> None:
    from podium.core.batch.executor import LocalExecutor
    from podium.core.batch.runner import counts, run_batch, work_left
    from podium.tui.batch_progress import BatchProgress
    from podium.tui.factory import make_engine

    engine = make_engine(store)
    local = LocalExecutor(engine)
    executor = chosen or local
    left = work_left(store, batch_id, retry_failed=retry_failed)
    progress = BatchProgress(len(left.fresh) + len(left.again), quiet=quiet or as_json)

    async def main() -> None:
        try:
            await run_batch(store, batch_id, recipe, executor, local, progress,
                            concurrency=concurrency, retry_failed=retry_failed)
        finally:
            await engine.hub.aclose()

    import asyncio  # here, not at the top: `podium --help` stays instant

    started = time.monotonic()
    try:
        with progress:
            asyncio.run(main())
    except KeyboardInterrupt:
        click.secho(f"cancelled batch {batch_id}", fg="yellow", err=True)
        click.echo(f"hint: continue with: podium batch resume {batch_id}", err=True)
        sys.exit(130)
    finally:
        close = getattr(chosen, "close", None)
        if close is not None:
            close()
    took = time.monotonic() - started
    rows = store.batch_rows(batch_id)
    tally = counts(rows)
    if as_json:
        emit_json(_summary(store, batch_id, tally, took, progress.done))
    elif not quiet:
        _print_summary(batch_id, tally, took, progress.done)
    sys.exit(_exit_code(tally))


def _exit_code(tally: dict[str, int]) -> int:
    if tally["failed"] or tally["skipped"] or tally["in_doubt"]:
        return EXIT["failed"]
    return EXIT["waiting"] if tally["waiting"] else 0


def _summary(store: Any, batch_id: str, tally: dict[str, int], took: float | None = None,
             ran: int | None = None) -> dict[str, Any]:
    record = store.get_batch(batch_id)
    out: dict[str, Any] = {"batch_id": record.id, "recipe": record.recipe_name,
                           "data": record.data, "executor": record.executor,
                           "rows": record.total, "status": _state(tally), "counts": tally}
    if took is not None:
        out.update(seconds=round(took, 3), ran=ran)
    return out


def _state(tally: dict[str, int]) -> str:
    if tally["pending"] or tally["in_doubt"] or tally["running"]:
        return "unfinished"
    if tally["waiting"]:
        return "waiting"
    return "failed" if tally["failed"] or tally["skipped"] else "succeeded"


def _tally_line(tally: dict[str, int]) -> str:
    return ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in tally.items() if n)


def _print_summary(batch_id: str, tally: dict[str, int], took: float, ran: int) -> None:
    color = {"succeeded": "green", "failed": "red"}.get(_state(tally), "yellow")
    per_s = ran / took if ran and took > 0 else 0.0
    rate = f" ({per_s:.1f} rows/s)" if per_s >= 1 else f" ({took / ran:.1f} s/row)" if ran \
        else ""
    click.secho(f"batch {batch_id}: {_tally_line(tally)} · {ran} ran in {took:.2f}s{rate}",
                fg=color, err=True)
    if tally["waiting"]:
        click.echo(f"  waiting rows: decide them with `podium review`, then "
                   f"`podium batch resume {batch_id}` for any left waiting", err=True)
    if tally["failed"] or tally["skipped"]:
        click.echo(f"  see the rows: podium batch status {batch_id}", err=True)
    if tally["pending"] or tally["in_doubt"]:
        click.echo(f"  continue with: podium batch resume {batch_id}", err=True)


@batch.command()
@click.argument("batch_id", metavar="[BATCH]", default="last")
@click.option("--rows", "all_rows", is_flag=True, help="Every row, not only those not done.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (with every row).")
@friendly
def status(batch_id: str, all_rows: bool, as_json: bool) -> None:
    """Counts of BATCH (default: the newest) and its rows that are not done."""
    from podium.core.batch.runner import counts, state_of

    store = open_store()
    record = store.get_batch(batch_id)
    rows = store.batch_rows(record.id)
    tally = counts(rows)
    if as_json:
        out = _summary(store, record.id, tally)
        out["rows_detail"] = [{"index": r.index, "key": r.key, "status": state_of(r),
                               "run_id": r.run_id, "error": r.error} for r in rows]
        emit_json(out)
        return
    click.echo(f"batch {record.id} · {record.recipe_name} · {record.total} rows from "
               f"{record.data} · {record.executor}")
    click.echo(f"  {_tally_line(tally)}" + ("  (running now)" if record.busy else ""))
    shown = rows if all_rows else [r for r in rows if state_of(r) != "succeeded"]
    for r in shown[:200]:
        state = state_of(r)
        extra = f"  {r.error}" if r.error else ""
        if state == "waiting" and r.run_id:
            extra = f"  review: podium review --run {r.run_id}"
        click.echo(f"  {r.index:>5}  {r.key:<14} {state:<10} {r.run_id or '-':<14}{extra}")
    if len(shown) > 200:
        click.echo(f"  … {len(shown) - 200} more (--json for all)")
    if tally["pending"] or tally["in_doubt"]:
        click.echo(f"continue with: podium batch resume {record.id}")


@batch.command("list")
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="JSON array.")
@friendly
def list_batches(limit: int, as_json: bool) -> None:
    """Batches, newest first."""
    from podium.core.batch.runner import counts

    store = open_store()
    found = store.list_batches(limit)
    summaries = [_summary(store, b.id, counts(store.batch_rows(b.id))) for b in found]
    if as_json:
        emit_json(summaries)
        return
    if not found:
        click.echo("no batches yet: podium batch run RECIPE DATA")
        return
    click.echo(f"{'BATCH':<14}{'RECIPE':<22}{'ROWS':>6}  {'STATUS':<11}{'EXECUTOR':<9}COUNTS")
    for s in summaries:
        click.echo(f"{s['batch_id']:<14}{s['recipe'][:21]:<22}{s['rows']:>6}  "
                   f"{s['status']:<11}{s['executor']:<9}{_tally_line(s['counts'])}")


@batch.command()
@click.argument("batch_id", metavar="BATCH")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]),
              default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="File to write (default: stdout; parquet needs a file).")
@click.option("--steps", is_flag=True, help="Every step's output, not only the run's.")
@friendly
def export(batch_id: str, fmt: str, output: str | None, steps: bool) -> None:
    """One record per row of BATCH: index, key, inputs, status, run, outputs, error."""
    from podium.tui.batch_export import write_export

    store = open_store()
    record = store.get_batch(batch_id)
    n = write_export(store, record.id, fmt, output, steps=steps)
    if output:
        click.echo(f"wrote {n} rows to {output}", err=True)
