"""`podium calibrate`: fit the router to the local model configured."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from podium.tui.cli_common import emit_json, friendly, open_store


@click.command()
@click.option("--model", help="The local model to calibrate (default: the configured one).")
@click.option("--remote", help="Also ask this remote model the prompts the local one gets "
              "wrong (needs --budget).")
@click.option("--budget", type=click.FloatRange(min=0), help="USD the remote model may cost.")
@click.option("--limit", type=click.IntRange(min=2), help="Ask only N prompts, spread over "
              "every kind (a quick calibration).")
@click.option("--max-tokens", type=click.IntRange(min=1, max=4096), help="Longest answer "
              "(default 64, as the shipped fit was made).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@friendly
def calibrate(model: str | None, remote: str | None, budget: float | None,
              limit: int | None, max_tokens: int | None, as_json: bool) -> None:
    """Run the calibration suite on a local model, mark each answer by its check, fit the
    router to it and store the fit (tied to the model file). Answers are kept as they
    come: run it again after Ctrl-C and it continues where it stopped."""
    import asyncio

    from podium.core.config import load_settings
    from podium.core.models.calibrate import calibrate as run
    from podium.core.models.calibrate import local_spec, remote_spec
    from podium.providers.registry import build_hub

    settings = load_settings()
    name, spec = local_spec(settings, model)
    if remote is not None:
        remote_spec(settings, remote, budget)
    elif budget is not None:
        raise click.UsageError("--budget goes with --remote R")
    store = open_store()
    hub = build_hub(settings)
    show = _Progress(name, quiet=as_json)
    started = time.perf_counter()

    async def main() -> Any:
        try:
            return await run(store, hub, name, spec, remote=remote, budget=budget,
                             limit=limit, max_tokens=max_tokens, on_progress=show)
        finally:
            await hub.aclose()

    try:
        result = asyncio.run(main())
    except KeyboardInterrupt:
        show.end()
        kept = show.last.done if show.last is not None else 0
        click.echo(f"calibration of {name} stopped: {kept} answers are stored; run the "
                   "same command again to continue where it stopped", err=True)
        sys.exit(130)
    show.end()
    seconds = time.perf_counter() - started
    summary = {**result.to_dict(), "wall_seconds": round(seconds, 1)}
    if as_json:
        emit_json(summary)
        return
    fit = result.fit
    click.echo(f"calibrated {name} on {result.prompts} prompts in {seconds:.0f} s "
               f"({result.resumed} were stored already)")
    click.echo(f"  local model right on {result.local_right:.1%}")
    if remote is not None:
        click.echo(f"  {remote}: asked {result.remote_asked} the local model got wrong, right "
                   f"on {result.remote_right}, ${result.spent:.4f}")
        if result.remote_note:
            click.echo(f"  {result.remote_note}")
    for note in result.notes:
        click.echo(f"  {note}")
    click.echo(f"  fit: threshold {fit.threshold:.3f}; keeps {result.kept_local:.0%} of the "
               f"suite local; APGR {result.loo_apgr:.3f} (each prompt scored without itself)")
    if fit.cascade is not None:
        click.echo(f"  cascade: escalates a local answer below confidence "
                   f"{fit.cascade.min_confidence:.3g}, read from this model's token "
                   "probabilities")
    else:
        click.echo("  cascade: too few answers to read this model's token probabilities; "
                   "the embedded model's reading serves")
    click.echo(f"  stored for {name} (file {result.fingerprint}); `podium route` now uses it")


class _Progress:
    """A bar on a terminal; a plain line every tenth of the way in a pipe."""

    def __init__(self, model: str, *, quiet: bool) -> None:
        self.model = model
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last: Any = None
        self.started = time.perf_counter()
        self._said = -1
        self._drawn = False

    def __call__(self, p: Any) -> None:
        first = self.last is None or self.last.phase != p.phase
        self.last = p
        if self.quiet:
            return
        if first and p.resumed:
            self._line(f"{p.phase}: resuming, {p.resumed} of {p.total} answers already stored")
        if self.tty:
            width = 30
            filled = int(width * p.done / max(p.total, 1))
            fresh = p.done - p.resumed
            elapsed = time.perf_counter() - self.started
            eta = elapsed / fresh * (p.total - p.done) if fresh else 0.0
            right = f"right {p.right / p.done:.0%}" if p.done else ""
            spent = f" ${p.spent:.4f}" if p.phase == "remote" else ""
            sys.stderr.write(f"\r{self.model} {p.phase} [{'#' * filled}{'.' * (width - filled)}]"
                             f" {p.done}/{p.total} {right}{spent} eta {eta:.0f}s ")
            sys.stderr.flush()
            self._drawn = True
            return
        tenth = p.done * 10 // max(p.total, 1)
        if tenth != self._said:
            self._said = tenth
            right = f", right {p.right / p.done:.0%}" if p.done else ""
            self._line(f"{p.phase}: {p.done}/{p.total} answered{right}")

    def _line(self, text: str) -> None:
        if self._drawn:
            sys.stderr.write("\n")
            self._drawn = False
        click.echo(f"calibrate {self.model}: {text}", err=True)

    def end(self) -> None:
        """Finish the bar's line."""
        if self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._drawn = False
