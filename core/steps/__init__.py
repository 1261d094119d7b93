"""Step kinds: one module each, declaring its schema, template fields, runner and value
parser to the registry (`registry.py`); `kinds.py` lists the built-in ones."""
