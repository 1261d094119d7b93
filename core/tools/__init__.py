"""Tools an agent may call: each described by JSON Schema, run by one guarded call."""
