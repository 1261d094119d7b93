"""A run's plan drawn as its dependency graph, for a `Tree` in the terminal.

A DAG is not a tree, so each step hangs under one of the steps it needs (the last of
them in plan order: the one it waits for longest) and names the others it joins
("⇠ also a, b"). Siblings are fan-out: steps that may run at once. While the plan is
one chain from a single first step, its links stay on the top level rather than each
one deeper, so a long pipeline reads as a column and indents only where it fans out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from podium.core.store import StepRecord
from podium.tui.screens.runs import GLYPHS


@dataclass
class Node:
    """One step in the drawing: the other steps it also needs, and what hangs under it."""

    step_id: str
    also: list[str] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)


def reduced(order: list[str], deps: dict[str, list[str]]) -> dict[str, list[str]]:
    """`deps` without the needs implied by others (a step that needs `a` and `b`, where
    `b` itself needs `a`, is drawn needing only `b`)."""
    memo: dict[str, set[str]] = {}

    def above(step: str) -> set[str]:
        if step not in memo:
            seen: set[str] = set()
            todo = list(deps.get(step, []))
            while todo:
                d = todo.pop()
                if d not in seen:
                    seen.add(d)
                    todo.extend(memo.get(d, ()) or deps.get(d, []))
            memo[step] = seen
        return memo[step]

    out = dict(deps)
    for s in order:
        needs = deps.get(s, [])
        if len(needs) > 1:
            out[s] = [d for d in needs if not any(d in above(o) for o in needs if o != d)]
    return out


def nest(order: list[str], deps: dict[str, list[str]]) -> list[Node]:
    """The forest drawn for a plan: `order` is the plan order, `deps` each step's
    needs (in plan order). Iterative, so a chain of thousands of steps is fine."""
    kids: dict[str, list[str]] = {s: [] for s in order}
    deps = reduced(order, deps)
    roots: list[str] = []
    for s in order:
        needs = [d for d in deps.get(s, []) if d in kids]
        (kids[needs[-1]] if needs else roots).append(s)
    forest: list[Node] = []
    todo: list[tuple[list[Node], str]] = [(forest, s) for s in reversed(roots)]
    while todo:
        level, step = todo.pop()
        while True:
            needs = [d for d in deps.get(step, []) if d in kids]
            node = Node(step, needs[:-1])
            level.append(node)
            below = kids[step]
            if level is forest and len(roots) == 1 and len(below) == 1 and \
                    len(deps.get(below[0], [])) == 1:
                step = below[0]  # the single first chain goes on down the column
                continue
            todo.extend((node.children, k) for k in reversed(below))
            break
    return forest


STYLES = {"succeeded": "green", "failed": "red", "running": "yellow", "waiting": "cyan",
          "skipped": "dim", "pending": "dim"}


def label(node: Node, step: StepRecord | None) -> Text:
    """A node's line: status glyph, step id, kind, and the other steps it joins."""
    status = step.status if step else "pending"
    out = Text()
    out.append(GLYPHS.get(status, "?") + " ", style=STYLES.get(status, ""))
    out.append(node.step_id, style="bold" if status == "running" else "")
    if step is not None:
        out.append(f" {step.kind}", style="dim")
        if step.stale:
            out.append(" stale", style="yellow")
    if node.also:
        out.append(f" ⇠ also {', '.join(node.also)}", style="italic dim")
    return out


def fill(tree: Tree[str], forest: list[Node],
         steps: dict[str, StepRecord]) -> dict[str, tuple[Node, TreeNode[str]]]:
    """Draw `forest` into `tree` (cleared first), everything expanded. Returns each
    step's node, so later status changes relabel it without a redraw."""
    tree.clear()
    out: dict[str, tuple[Node, TreeNode[str]]] = {}
    todo: list[tuple[TreeNode[str], Node]] = [(tree.root, n) for n in reversed(forest)]
    while todo:
        parent, node = todo.pop()
        drawn = parent.add(label(node, steps.get(node.step_id)), data=node.step_id,
                           expand=True, allow_expand=False)
        out[node.step_id] = (node, drawn)
        todo.extend((drawn, k) for k in reversed(node.children))
    return out
