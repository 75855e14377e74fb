"""How a todo moves: which tasks are ready or blocked, and the session status it implies.

Pure functions over the `Todo`, shared by the rules path, the model path and the jobs that
retry a session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.domain.session import Session
from app.domain.todo import Task, Todo

FINISHED = ("done", "skipped")
PR_FIELDS = ("pr_number", "pr_url", "branch", "head_sha")
APPROVAL_WAIT = "waiting for `/idp apply` from a maintainer"
APPROVAL_NOTE = f"🔒 Steps marked 🔒 are {APPROVAL_WAIT}."


def ready_tasks(todo: Todo) -> list[Task]:
    """Pending tasks whose dependencies are all done: they may run now, together."""
    done = {t.id for t in todo.tasks if t.status in FINISHED}
    return [t for t in todo.tasks if t.status == "pending" and all(d in done for d in t.depends_on)]


def block_dependents(todo: Todo | None) -> None:
    """Tasks whose dependencies failed cannot run: mark them blocked, transitively."""
    if todo is None:
        return
    changed = True
    while changed:
        changed = False
        bad = {t.id for t in todo.tasks if t.status in ("failed", "blocked")}
        for task in todo.tasks:
            stopped = [d for d in task.depends_on if d in bad]
            if task.status == "pending" and stopped:
                task.status, task.detail = "blocked", f"blocked: {', '.join(stopped)} failed"
                changed = True


def final_status(todo: Todo | None) -> str:
    """failed if a required task failed; waiting if approval-gated tasks remain; else done."""
    tasks = todo.tasks if todo else []
    if any(t.status in ("failed", "blocked") and not t.optional for t in tasks):
        return "failed"
    if any(t.status == "waiting_approval" for t in tasks):
        return "waiting"
    return "done"


def retry_failed(session: Session) -> None:
    """`/idp retry`: failed and blocked tasks run again; completed ones stay done, and their
    side effects are not repeated (their records are kept)."""
    if session.todo is None:
        return
    for task in session.todo.tasks:
        if task.status in ("failed", "blocked", "running"):
            task.status, task.detail = "pending", None
    session.todo.notes = [n for n in session.todo.notes if not n.startswith("⚠️")]
    if session.status in ("failed", "cancelled"):
        session.status = "new"


def gate_approvals(
    todo: Todo, gated: Callable[[str | None], bool], approved: Callable[[Task], bool]
) -> list[Task]:
    """Pending gated tasks wait until an approval covers them (their digest); waiting ones
    run once it does. Keeps one note explaining the 🔒. Returns the tasks that changed."""
    changed = []
    for task in todo.tasks:
        if not gated(task.tool):
            continue
        ok = approved(task)
        if task.status == "pending" and not ok:
            task.status, task.detail = "waiting_approval", APPROVAL_WAIT
            changed.append(task)
        elif task.status == "waiting_approval" and ok:
            task.status, task.detail = "pending", None
            changed.append(task)
    todo.notes = [n for n in todo.notes if n != APPROVAL_NOTE]
    if any(t.status == "waiting_approval" for t in todo.tasks):
        todo.notes.append(APPROVAL_NOTE)
    return changed


def merge_output(session: Session, output: dict[str, Any]) -> None:
    """A successful tool output onto the session: generated files into the workspace, and a
    pull request's number, URL, branch and head onto the session and the todo's meta."""
    files = output.get("files")
    if isinstance(files, dict):
        session.files.update({str(k): str(v) for k, v in files.items()})
    if output.get("pr_number") is not None and output.get("pr_url") is not None:
        for name in PR_FIELDS:
            if output.get(name) is not None:
                setattr(session, name, output[name])
        if session.todo is not None:
            session.todo.meta["pull request"] = f"[#{session.pr_number}]({session.pr_url})"
