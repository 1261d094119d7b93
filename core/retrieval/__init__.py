"""Retrieval over a person's own documents: folders indexed into SQLite FTS5 chunks
(`index.index_folder`), searched with BM25 (`index.search`)."""
