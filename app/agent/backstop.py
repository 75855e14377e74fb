"""What the App does when the model does not: the plan, the rest of a known plan, the PR.

A model may skip `write_todo`, stop after one tool, or never call `open_pull_request`. The
session still ends the way a rules run does: the App writes the plan (the rules planner's
for a structured create-service request, else one task per tool call), ticks tasks as
calls succeed, finishes a known request's plan when the model stops early, and publishes
generated files that are not on the pull request. Every tool runs through the step runner's
`execute`, so idempotency, approval gates, audit and step records stay the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.agent.planner import args_for, plan_create_service, task_title
from app.agent.providers.base import ToolCall
from app.agent.publisher import PUBLISH_TOOL, unpublished_args
from app.domain.todo import Task, Todo
from tools.spec import ToolSpec

if TYPE_CHECKING:
    from app.agent.engine import RunState, Steps
    from app.state import Session

PLAN_META = "plan"  # present in the todo's meta when the App wrote the plan
RULES_PLAN = "the rules planner's (the model wrote none)"
CALLS_PLAN = "one task per tool call (the model wrote none)"
OPEN = ("pending", "running", "failed", "waiting_approval", "blocked")


def app_planned(todo: Todo) -> bool:
    return PLAN_META in todo.meta


def adopt_plan(agent: Steps, s: Session, *, ask: bool = False) -> None:
    """The App's plan for a model that works without one: the rules planner's tasks for a
    structured request with a language, else tasks added one per tool call (`task_for`).
    `ask`: a structured request without a language raises the rules planner's question."""
    todo = s.todo
    assert todo is not None
    req = s.request
    if req is not None and (req.language is not None or ask):
        plan = plan_create_service(req, s.id, agent.registry)
        todo.tasks = plan.tasks
        for key, value in plan.meta.items():
            if key != "planner" and value:
                todo.meta.setdefault(key, value)
        todo.meta[PLAN_META] = RULES_PLAN
    else:
        todo.meta[PLAN_META] = CALLS_PLAN
    agent.gate_approvals(s)
    agent.emit("todo", {"todo": todo.model_dump()})


def task_for(
    todo: Todo, spec: ToolSpec | None, args: dict[str, Any], taken: set[str]
) -> Task | None:
    """The task a call of `spec` carries out: an open one of the same tool not yet `taken`
    by another call of this turn, the same arguments first. A tool the todo does not name
    gets a task of its own, so everything that runs shows in the todo."""
    if spec is None:
        return None
    mine = [t for t in todo.tasks if t.tool == spec.name]
    free = [t for t in mine if t.status in OPEN and t.id not in taken]
    exact = [t for t in free if t.args == args]
    if exact or free:
        return (exact or free)[0]
    if mine:
        return None  # a repeat of a finished task: its record answers it
    return new_task(todo, spec.name, args)


def new_task(todo: Todo, tool: str, args: dict[str, Any]) -> Task:
    ids = {t.id for t in todo.tasks}
    n = len(todo.tasks) + 1
    while f"t{n}" in ids:
        n += 1
    task = Task(id=f"t{n}", title=task_title(tool), tool=tool, args=dict(args))
    todo.tasks.append(task)
    return task


async def finish(agent: Steps, run: RunState) -> None:
    """The model stopped. For a structured request the App carries out what is left of the
    plan (the rules planner's when the model made no plan), then publishes files that are
    not on the pull request yet."""
    s = run.session
    assert s.todo is not None
    if s.request is not None:
        if not s.todo.tasks:
            adopt_plan(agent, s, ask=True)
        left = [t for t in s.todo.tasks if t.status in ("pending", "running") and t.tool]
        for task in left:
            task.status = "pending"  # nothing runs between turns: a `running` one was cut off
            spec = agent.spec_or_none(task.tool)
            if not task.args and spec is not None:
                task.args = args_for(spec, s.request)
        await agent.run_ready(run)
        ran = [t for t in left if t.status in ("done", "failed")]
        if ran:
            agent.note(
                s,
                f"The model stopped with {len(ran)} task(s) of the plan left; IDP Copilot "
                "carried them out.",
            )
    await publish(agent, run)


async def publish(agent: Steps, run: RunState) -> None:
    """Open or update the pull request when the session's files are not on it, as the rules
    path does: not while a required task failed, never past a gate, never twice."""
    s = run.session
    todo = s.todo
    spec = agent.spec_or_none(PUBLISH_TOOL)
    allowed = agent.allowed is None or (spec is not None and spec.name in agent.allowed)
    if todo is None or spec is None or not allowed:
        return
    args = unpublished_args(s, spec.name)
    failed = any(t.status in ("failed", "blocked") and not t.optional for t in todo.tasks)
    if args is None or failed:
        return
    task = next((t for t in todo.tasks if t.tool == spec.name), None)
    if task is None:
        task = new_task(todo, spec.name, args)
    elif task.status == "waiting_approval":
        return
    if not args and task.status != "done":
        args = dict(task.args)  # the title and summary the model planned, if any
    run.guard.step()
    run.guard.check(ToolCall(id=task.id, name=spec.name, arguments=args))
    task.args = args
    await agent.run_task(run, task)
    await agent.boundary(run)
