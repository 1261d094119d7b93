"""Terminal front ends: the `podium` CLI (and the Textual app to come)."""
