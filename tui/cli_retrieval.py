"""`podium index` and `podium search`: a person's documents as a searchable corpus."""

from __future__ import annotations

import click

from podium.tui.cli_common import emit_json, friendly, open_store
from podium.tui.progress import plural


@click.command("index")
@click.argument("folder", required=False, type=click.Path(file_okay=True, dir_okay=True))
@click.option("--name", help="The corpus name (default: the folder's name).")
@click.option("--list", "listing", is_flag=True, help="List the corpora instead.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: what was done "
              "(with --list, an array of corpora).")
@friendly
def index(folder: str | None, name: str | None, listing: bool, as_json: bool) -> None:
    """Index the .txt, .md and .html files under FOLDER into a corpus.

    Run it again after the files change: unchanged files are skipped, changed ones
    read again, removed ones dropped. Search with `podium search NAME "query"`, or from
    a recipe with a `retrieve` step. `podium index --list` shows the corpora.
    """
    from pathlib import Path

    from podium.core.retrieval.index import check_folder, index_folder

    if listing:
        list_corpora(as_json)
        return
    if folder is None:
        raise click.UsageError("give a FOLDER to index (or --list)")
    root = check_folder(folder)
    report = index_folder(open_store(), name or root.name, root)
    if as_json:
        emit_json(report.as_dict())
        return
    files = report.added + report.changed + report.unchanged
    click.echo(f"indexed {report.name}: {plural(files, 'file')} ({report.added} added, "
               f"{report.changed} changed, {report.unchanged} unchanged, {report.removed} "
               f"removed), {plural(report.chunks, 'chunk')} written in "
               f"{report.seconds:.2f}s")
    for path, why in report.skipped:
        click.echo(f"  skipped {Path(report.root, path)}: {why}", err=True)


def list_corpora(as_json: bool) -> None:
    """`podium index --list`."""
    import datetime

    corpora = open_store().corpora()
    if as_json:
        emit_json([{"name": c.name, "root": c.root, "files": c.files, "chunks": c.chunks,
                    "updated_at": c.updated_at} for c in corpora])
        return
    if not corpora:
        click.echo("no corpora yet: podium index FOLDER --name NAME", err=True)
    for c in corpora:
        when = datetime.datetime.fromtimestamp(c.updated_at).strftime("%Y-%m-%d %H:%M") \
            if c.updated_at else "never"
        click.echo(f"{c.name:20} {plural(c.files, 'file'):>10} {plural(c.chunks, 'chunk'):>11}"
                   f"  {when}  {c.root}")


@click.command("search")
@click.argument("name")
@click.argument("query")
@click.option("-n", "--limit", default=5, show_default=True, type=click.IntRange(1, 100),
              help="How many chunks.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of chunks with their "
              "source, position (lines), title, text and score.")
@friendly
def search(name: str, query: str, limit: int, as_json: bool) -> None:
    """The chunks of corpus NAME that best match QUERY, best first, with their sources.

    QUERY is plain text: quotes keep a "phrase" together; nothing else is special.
    """
    from podium.core.retrieval.index import search as find
    from podium.core.steps.retrieve import hit_value

    hits = find(open_store(), name, query, limit)
    if as_json:
        emit_json([hit_value(h) for h in hits])
        return
    if not hits:
        click.echo(f"nothing in {name} matches", err=True)
        return
    for n, hit in enumerate(hits, start=1):
        value = hit_value(hit)
        click.secho(f"{n}. {hit.source}:{value['position']}", bold=True, nl=False)
        click.echo(f"  {hit.title}  (score {hit.score:.2f})")
        snippet = " ".join(hit.snippet.split())
        click.echo(f"   {snippet}")
