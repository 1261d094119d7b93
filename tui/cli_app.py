"""`podium tui`: open the Textual app (Textual is imported only here, when it opens)."""

from __future__ import annotations

import click

from podium.tui.cli_common import friendly, open_store


def open_app(run_id: str | None = None, review: bool = False) -> None:
    """Run the app on the default database until the person quits."""
    from podium.tui.app import make_app

    store = open_store()
    try:
        make_app(store, open_run=run_id, review=review).run()
    finally:
        store.close()


@click.command("tui")
@click.option("--run", "run_id", metavar="RUN", help="Open this run.")
@click.option("--review", is_flag=True, help="Open the review queue.")
@friendly
def tui(run_id: str | None, review: bool) -> None:
    """Open the terminal app: runs live, the review queue, edits and reruns."""
    open_app(run_id, review)
