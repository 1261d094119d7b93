"""The DAG of a recipe's steps: dependencies, order, and what lies downstream of what.

Pure graph work on step ids; `core.recipe.check` finds the edges (from `needs`, the
steps each template refers to, and the kinds' own rules) and `core.recipe.load`
builds the plan once a recipe is sound.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Plan:
    """The DAG of a recipe's steps."""

    order: list[str]
    deps: dict[str, set[str]]
    dependents: dict[str, set[str]] = field(default_factory=dict)
    governed_by: dict[str, str] = field(default_factory=dict)  # step -> branch choosing it

    def descendants(self, step: str) -> set[str]:
        """Every step downstream of `step` (not including it)."""
        seen: set[str] = set()
        todo = list(self.dependents.get(step, ()))
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.add(s)
                todo.extend(self.dependents.get(s, ()))
        return seen


def build(deps: dict[str, set[str]], declared: list[str],
          governed_by: dict[str, str]) -> Plan:
    """The plan of an acyclic dependency graph, in the recipe's own order among peers."""
    order = topological(deps, declared)
    dependents: dict[str, set[str]] = {s: set() for s in declared}
    for s, ds in deps.items():
        for d in ds:
            dependents[d].add(s)
    return Plan(order, deps, dependents, governed_by)


def find_cycle(deps: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first step repeated at the end), or None. Iterative, so a
    graph thousands of steps deep cannot overflow the stack."""
    state: dict[str, int] = {}
    for root in sorted(deps):
        if root in state:
            continue
        path = [root]
        stack = [sorted(deps.get(root, ()), reverse=True)]
        state[root] = 1
        while stack:
            todo = stack[-1]
            if not todo:
                stack.pop()
                state[path.pop()] = 2
                continue
            nxt = todo.pop()
            if state.get(nxt) == 1:
                return list(reversed(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(sorted(deps.get(nxt, ()), reverse=True))
    return None


def topological(deps: dict[str, set[str]], declared: list[str]) -> list[str]:
    """Kahn's algorithm in rounds: every step whose dependencies are all placed joins
    the next round, and a round keeps the recipe's own order."""
    position = {s: i for i, s in enumerate(declared)}
    waiting = {s: len(deps.get(s, ())) for s in declared}
    dependents: dict[str, list[str]] = {s: [] for s in declared}
    for s in declared:
        for d in deps.get(s, ()):
            dependents[d].append(s)
    order: list[str] = []
    ready = [s for s in declared if waiting[s] == 0]
    while ready:
        order.extend(ready)
        following = []
        for s in ready:
            for t in dependents[s]:
                waiting[t] -= 1
                if waiting[t] == 0:
                    following.append(t)
        ready = sorted(following, key=position.__getitem__)
    if len(order) != len(declared):
        raise ValueError("cycle in plan")  # the checks report cycles before this
    return order
