"""Podium's engine: recipes, planning, scheduling, routing and storage, without a UI.

Nothing in this package imports Textual, httpx, llama_cpp, `tui` or `providers`;
model backends reach it only through the protocol in `core.provider`.
"""
