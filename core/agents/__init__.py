"""Agents and teams: a model with tools in a loop, every message stored, resumable."""
