"""What a stored step was given: its templates rendered again from what the run stored.

The engine does not store rendered prompts: rendering a step's templates with the run's
inputs and the stored outputs of the steps before it gives the same text. The run
screen shows it (`tui.data.Reader.step_input`), and a person's decision on a step the
local model answered teaches the router with it (`core.review.decisions`).
"""

from __future__ import annotations

from podium.core.errors import PodiumError
from podium.core.recipe import templates
from podium.core.recipe.load import pinned
from podium.core.steps.registry import template_fields
from podium.core.store import RunRecord, Store


def step_inputs(store: Store, run: RunRecord, step_id: str) -> list[tuple[str, str]]:
    """(name, text) of each of the step's templates (prompt, system, input...),
    rendered as the run gave them. A sub-step's templates, which see one item at a
    time, are left out; a template that cannot be rendered now says why instead."""
    recipe = pinned(store, run)
    definition = recipe.steps.get(step_id)
    if definition is None:
        return []
    outputs = {s.step_id: s.output for s in store.get_steps(run.id) if s.has_output}
    values = {"inputs": run.inputs, "steps": outputs}
    shown = []
    for path, source, is_expression in template_fields(definition):
        if len(path) > 1:
            continue
        name = str(path[0])
        try:
            text = (templates.evaluate(source, values, what=name) if is_expression
                    else templates.render(source, values, what=name))
        except PodiumError as e:
            text = f"(cannot be shown: {e.message})"
        shown.append((name, text if isinstance(text, str) else repr(text)))
    return shown
