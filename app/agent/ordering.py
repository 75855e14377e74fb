"""Dependency order, as pure functions: what is wrong with a plan's `depends_on`, and the waves
in which one turn's calls may run (each wave after the one it depends on, its calls together).

Plans come from a model, so the graphs are small (a plan has at most 30 tasks) and every walk
here is linear in their size.
"""

from __future__ import annotations

from collections.abc import Sequence


def plan_problems(tasks: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Sentences a model can act on for a plan given as (task id, depends_on) pairs: duplicate
    ids, ids that no task has, a task that waits for itself, and a cycle. Empty when fine."""
    problems: list[str] = []
    ids = [task_id for task_id, _ in tasks]
    known = set(ids)
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            problems.append(f"two tasks have the id `{task_id}`")
        seen.add(task_id)
    for task_id, deps in tasks:
        for dep in deps:
            if dep == task_id:
                problems.append(f"task `{task_id}` depends on itself")
            elif dep not in known:
                problems.append(f"task `{task_id}` depends on `{dep}`, which no task has as id")
    if not problems:
        cycle = find_cycle({task_id: list(deps) for task_id, deps in tasks})
        if cycle:
            problems.append("depends_on goes round in a cycle: " + " → ".join(cycle))
    return problems


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle of `graph` (node → the nodes it depends on) as a closed path, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in graph:
        if state.get(root):
            continue
        path: list[str] = [root]
        edges = [iter(graph.get(root, ()))]
        state[root] = 1
        while path:
            nxt = next(edges[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                edges.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt in graph and not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                edges.append(iter(graph.get(nxt, ())))
    return None


def waves(
    items: Sequence[str], deps: dict[str, Sequence[str]]
) -> tuple[list[list[str]], list[str]]:
    """`items` in waves: each item after every item of `items` it depends on, items of one
    wave independent of each other, order kept within a wave. Returns (waves, left over):
    what is left over sits on a cycle and never gets a wave."""
    inside = set(items)
    waiting = {i: {d for d in deps.get(i, ()) if d in inside and d != i} for i in items}
    done: set[str] = set()
    out: list[list[str]] = []
    while True:
        wave = [i for i in items if i not in done and waiting[i] <= done]
        if not wave:
            break
        out.append(wave)
        done.update(wave)
    return out, [i for i in items if i not in done]
