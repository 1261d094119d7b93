"""Batches: a recipe over a dataset, row by row durable, on this machine or a cluster."""
