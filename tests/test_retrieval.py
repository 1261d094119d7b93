"""Retrieval: documents read and chunked, folders indexed incrementally into FTS5 in the
real database, any query text made safe, `podium index` / `podium search`, the
`retrieve` step and the `search_docs` tool."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from podium.core.errors import ConfigError, RecipeErrors, StoreError
from podium.core.recipe.load import load, loads
from podium.core.retrieval.chunks import chunk_lines
from podium.core.retrieval.documents import html_document
from podium.core.retrieval.index import index_folder, search
from podium.core.retrieval.query import match_expression
from podium.core.store import Store
from podium.core.tools.base import call_tool
from podium.core.tools.search_docs import search_docs_tool
from podium.tui.cli import cli
from tests.conftest import ScriptedProvider
from tests.test_engine import make_engine

HELP = {
    "refunds.md": "# Refunds\n\nA refund is paid within 30 days of the return.\n\n"
                  "Damaged parcels are refunded in full.\n",
    "shipping.txt": "Shipping\n\nParcels ship in 2 days. Tracking numbers come by email.\n",
    "account/password.html": "<html><head><title>Passwords</title><style>p{}</style>"
                             "</head>\n<body>\n<h1>Reset a password</h1>\n<p>Use the "
                             "<b>forgot password</b> link.</p>\n<script>var s = 1;</script>"
                             "\n</body></html>",
}


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def store() -> Store:
    return Store.open()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return write(tmp_path / "help", HELP)


# --- reading and chunking ------------------------------------------------------------------


def test_html_keeps_visible_text_with_its_source_lines() -> None:
    doc = html_document(HELP["account/password.html"])
    assert doc.title == "Passwords"
    assert doc.lines == [(3, "Reset a password"), (4, "Use the forgot password link.")]
    assert "var s" not in str(doc.lines) and "p{}" not in str(doc.lines)


def test_chunks_gather_paragraphs_and_cut_long_ones_with_their_lines() -> None:
    lines = [(1, "short one"), (2, ""), (3, "x" * 500), (4, "y" * 500), (5, ""),
             (6, "z" * 4000)]
    chunks = chunk_lines(lines, target=800, limit=1600)
    assert chunks[0].line == 1 and chunks[0].end_line == 4  # gathered up to the target
    assert chunks[0].text == "short one\n\n" + "x" * 500 + "\n" + "y" * 500  # paragraphs kept
    assert all(len(c.text) <= 1600 for c in chunks)
    assert [c.line for c in chunks[1:]] == [6, 6, 6]  # one long line, cut, keeps its line
    assert "".join(c.text for c in chunks[1:]) == "z" * 4000


# --- queries ------------------------------------------------------------------------------


HOSTILE = ['what\'s "new', 'C++ OR', "col:value", "NEAR(a b, 3)", "*", "^start", "AND",
           "a - b", '""', "(", ")", "{text}: x", "x NOT", "'; DROP TABLE chunks; --",
           "\x00nul", "émigré café", "🙂 smile", "   ", "OR OR OR", '"unbalanced phrase',
           "x" * 5000, " ".join(["word"] * 500)]


@pytest.mark.parametrize("text", HOSTILE)
def test_no_query_text_raises_an_fts_error(store: Store, docs: Path, text: str) -> None:
    index_folder(store, "help", docs)
    hits = search(store, "help", text, 5)  # must not raise
    assert isinstance(hits, list)


def test_queries_are_quoted_words_or_phrases_without_stopwords() -> None:
    assert match_expression("How do I get a refund?") == '"get" OR "refund"'
    assert match_expression('"forgot password" link NEAR x') == \
        '"forgot password" OR "link" OR "near" OR "x"'
    assert match_expression("the of and") == '"the" OR "of" OR "and"'  # nothing else left
    assert match_expression("?!  ") is None


def test_search_ranks_and_cites_the_matching_chunk(store: Store, docs: Path) -> None:
    index_folder(store, "help", docs)
    (best, *_) = search(store, "help", "forgot my password", 3)
    assert (best.source, best.line, best.end_line) == ("account/password.html", 3, 4)
    assert best.title == "Passwords" and "[forgot] [password]" in best.snippet
    (hit,) = search(store, "help", "damaged refunded", 5)  # porter stemming: refund(ed)
    assert hit.source == "refunds.md" and "Damaged parcels" in hit.text


# --- incremental indexing -----------------------------------------------------------------


def test_reindex_skips_unchanged_rereads_changed_and_drops_removed(store: Store,
                                                                   docs: Path) -> None:
    first = index_folder(store, "help", docs)
    assert (first.added, first.changed, first.unchanged, first.removed) == (3, 0, 0, 0)
    again = index_folder(store, "help", docs)
    assert (again.added, again.changed, again.unchanged, again.removed, again.chunks) == \
        (0, 0, 3, 0, 0)
    # Touched but the same bytes: unchanged (its hash says so), and not chunked again.
    os.utime(docs / "shipping.txt", ns=(1, 1))
    touched = index_folder(store, "help", docs)
    assert (touched.changed, touched.unchanged, touched.chunks) == (0, 3, 0)
    (docs / "refunds.md").write_text("# Refunds\n\nStore credit only, sorry.\n")
    (docs / "shipping.txt").unlink()
    write(docs, {"new.md": "Gift cards never expire.\n"})
    later = index_folder(store, "help", docs)
    assert (later.added, later.changed, later.unchanged, later.removed) == (1, 1, 1, 1)
    assert search(store, "help", "parcels tracking", 5) == []  # old text and file gone
    assert [h.source for h in search(store, "help", "store credit", 5)] == ["refunds.md"]
    assert [h.source for h in search(store, "help", "gift cards", 5)] == ["new.md"]
    corpus = store.corpus("help")
    assert corpus is not None and (corpus.files, corpus.chunks) == (3, 3)
    # The FTS index holds exactly the chunks there are (the triggers kept it in step).
    rows = store.conn.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]
    assert rows == 3


def test_corpora_are_apart_and_hidden_or_other_files_are_left_out(store: Store,
                                                                   tmp_path: Path) -> None:
    a = write(tmp_path / "a", {"x.md": "apples and pears\n", ".hidden.md": "apples\n",
                               "notes.pdf": "apples", ".git/y.md": "apples\n"})
    b = write(tmp_path / "b", {"y.md": "apples only\n"})
    assert index_folder(store, "a", a).added == 1
    index_folder(store, "b", b)
    assert [h.source for h in search(store, "a", "apples", 10)] == ["x.md"]
    assert [h.source for h in search(store, "b", "apples", 10)] == ["y.md"]


def test_bad_folders_names_and_corpora_are_clear_errors(store: Store, tmp_path: Path,
                                                        docs: Path) -> None:
    with pytest.raises(ConfigError, match="no folder .*nowhere to index"):
        index_folder(store, "x", tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        index_folder(store, "x", docs / "refunds.md")
    with pytest.raises(ConfigError, match="cannot name a corpus"):
        index_folder(store, "bad name!", docs)
    index_folder(store, "help", docs)
    with pytest.raises(StoreError, match="no corpus named 'hlp'") as e:
        search(store, "hlp", "x")
    assert e.value.hint == "did you mean 'help'?"


def test_the_index_lives_in_the_main_database(store: Store, docs: Path) -> None:
    index_folder(store, "help", docs)
    with sqlite3.connect(store.path) as other:  # another connection sees it: committed
        count = other.execute("SELECT COUNT(*) FROM corpus_files").fetchone()[0]
    assert count == 3


def test_the_migration_adds_corpora_to_a_database_from_before(
        tmp_path: Path, docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite_utils

    from podium.core.store import migrations

    path = tmp_path / "before.db"
    conn = sqlite3.connect(path, isolation_level=None)
    before = [m for m in migrations.MIGRATIONS if m.__name__ != "m008_documents"]
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", before)
        migrations.migrate(sqlite_utils.Database(conn))
    conn.close()
    store = Store(path)
    try:
        columns = {t: {c.name for c in store.db[t].columns}
                   for t in ("corpora", "corpus_files", "chunks")}
        assert columns == {
            "corpora": {"id", "name", "root", "created_at", "updated_at"},
            "corpus_files": {"id", "corpus_id", "path", "mtime_ns", "size", "hash", "title",
                             "chunks", "indexed_at"},
            "chunks": {"id", "file_id", "corpus", "ordinal", "line", "end_line", "title",
                       "text"},
        }
        assert migrations.migrate(store.db) == []  # applied once, not again
        assert index_folder(store, "help", docs).added == 3
        assert search(store, "help", "password")[0].source == "account/password.html"
    finally:
        store.close()


# --- the CLI ------------------------------------------------------------------------------


def test_cli_index_and_search(docs: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["index", str(docs), "--name", "help"])
    assert out.exit_code == 0, out.output
    assert "indexed help: 3 files (3 added, 0 changed, 0 unchanged, 0 removed)" in out.output
    out = runner.invoke(cli, ["index", str(docs), "--name", "help", "--json"])
    assert json.loads(out.output)["unchanged"] == 3
    out = runner.invoke(cli, ["search", "help", 'password "reset a', "--json"])
    hits = json.loads(out.output)
    assert hits[0]["source"] == "account/password.html" and hits[0]["position"] == "3-4"
    out = runner.invoke(cli, ["search", "help", "refund", "-n", "1"])
    assert out.exit_code == 0 and out.output.startswith("1. refunds.md:1-5")
    out = runner.invoke(cli, ["search", "nope", "x"])
    assert out.exit_code == 2 and "no corpus named 'nope'" in out.output
    out = runner.invoke(cli, ["index", "--list", "--json"])
    (listed,) = json.loads(out.output)
    assert (listed["name"], listed["files"], listed["chunks"]) == ("help", 3, 3)
    out = runner.invoke(cli, ["index"])
    assert out.exit_code == 2 and "give a FOLDER to index" in out.output
    out = runner.invoke(cli, ["index", str(docs / "missing")])
    assert out.exit_code == 2 and "no folder" in out.output and "Traceback" not in out.output


# --- the retrieve step ----------------------------------------------------------------------


RECIPE = """
[inputs.question]
default = "how long does a refund take?"

[steps.find]
kind = "retrieve"
corpus = "shop-help"
path = "help"
query = "{{ inputs.question }}"
top_k = 2

[steps.cite]
kind = "template"
template = "{% for h in steps.find %}[{{ h.source }}:{{ h.position }}] {% endfor %}"
"""


def test_a_recipe_ships_its_corpus_and_cites_what_it_found(tmp_path: Path, docs: Path) -> None:
    (tmp_path / "shop.toml").write_text(RECIPE)
    recipe = load(tmp_path / "shop.toml")
    assert recipe.plan.deps["cite"] == {"find"}
    engine = make_engine(ScriptedProvider())
    result = asyncio.run(engine.run(recipe, {}))
    assert result.status == "succeeded", result
    found = engine.store.get_steps(result.run_id)
    hits = next(s for s in found if s.step_id == "find").output
    assert hits[0]["source"] == "refunds.md" and hits[0]["text"].startswith("# Refunds")
    assert set(hits[0]) == {"source", "position", "line", "end_line", "title", "text", "score"}
    assert result.outputs == {"cite": "[refunds.md:1-5] "}
    # The shipped folder changes: the next run indexes what changed and finds it.
    (docs / "refunds.md").write_text("A refund takes 90 days now.\n")
    again = asyncio.run(engine.run(load(tmp_path / "shop.toml"), {}))
    assert again.outputs == {"cite": "[refunds.md:1] "}


def test_a_recipe_never_takes_over_a_corpus_indexed_from_another_folder(
        tmp_path: Path, docs: Path, store: Store) -> None:
    mine = write(tmp_path / "mine", {"notes.md": "my own notes\n"})
    index_folder(store, "shop-help", mine)
    (tmp_path / "shop.toml").write_text(RECIPE)
    engine = make_engine(ScriptedProvider())
    result = asyncio.run(engine.run(load(tmp_path / "shop.toml"), {}))
    assert result.status == "failed"
    step = next(s for s in engine.store.get_steps(result.run_id) if s.step_id == "find")
    assert f"corpus 'shop-help' is the index of {mine}" in (step.error or "")
    assert [h.source for h in search(store, "shop-help", "notes")] == ["notes.md"]
    # A person may move a corpus to another folder on purpose: the CLI does.
    moved = index_folder(store, "shop-help", docs)
    assert (moved.added, moved.removed) == (3, 1)


def test_a_missing_corpus_folder_or_bad_name_is_a_recipe_error(tmp_path: Path) -> None:
    (tmp_path / "shop.toml").write_text(RECIPE.replace('corpus = "shop-help"',
                                                       'corpus = "shop help"'))
    with pytest.raises(RecipeErrors) as e:
        load(tmp_path / "shop.toml")
    said = {(x.field, x.line): x.message for x in e.value.errors}
    assert said[("steps.find.corpus", 7)] == "'shop help' cannot name a corpus"
    assert said[("steps.find.path", 8)].startswith("no folder ")


def test_a_retrieve_step_on_an_unknown_corpus_fails_with_the_fix() -> None:
    recipe = loads("[steps.find]\nkind = \"retrieve\"\ncorpus = \"nothing\"\nquery = \"x\"\n")
    engine = make_engine(ScriptedProvider())
    result = asyncio.run(engine.run(recipe, {}))
    assert result.status == "failed"
    (step,) = engine.store.get_steps(result.run_id)
    assert "no corpus named 'nothing'" in (step.error or "")
    assert "podium index DIR --name nothing" in (step.hint or "")


# --- the search_docs tool -------------------------------------------------------------------


def test_search_docs_tool_returns_citable_passages(store: Store, docs: Path) -> None:
    tool = search_docs_tool(store, "help", folder=docs, top_k=2)
    outcome = asyncio.run(call_tool(tool, {"query": "forgot password"}))
    assert outcome.ok and outcome.result.startswith(
        "[1] account/password.html:3-4 (Passwords)\nReset a password")
    nothing = asyncio.run(call_tool(tool, {"query": "zebra"}))
    assert nothing.error and "nothing in 'help' matches 'zebra'" in nothing.error
    wrong = asyncio.run(call_tool(tool, {"query": "x", "top_k": 9}))
    assert wrong.error and "schema" in wrong.error
    with pytest.raises(StoreError, match="no corpus named 'other'"):
        search_docs_tool(store, "other")
