"""The todo list: the plan the agent publishes as one issue comment and keeps up to date."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.domain.approval import short
from app.domain.plan import ClusterPlan
from app.domain.plan_render import plan_section

TaskStatus = Literal[
    "pending", "running", "done", "failed", "skipped", "waiting_approval", "blocked"
]

MARKER_PREFIX = "<!-- idp-copilot:todo session="


def marker(session_id: str) -> str:
    """The hidden marker that lets the App find its own comment again."""
    return f"{MARKER_PREFIX}{session_id} -->"


class Task(BaseModel):
    """One step of the plan; `tool` and `args` say how it is carried out."""

    id: str
    title: str
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    status: TaskStatus = "pending"
    detail: str | None = None
    optional: bool = Field(
        False, description="A failure of this task does not fail the session (e.g. a search)."
    )
    # Approval-gated tasks: what `/idp apply` would approve (app/domain/approval.py).
    target: str | None = Field(None, description="What the call acts on, e.g. a namespace")
    digest: str | None = Field(None, description="sha256 of the tool, arguments and files")
    applies: int = Field(0, description="How many files the digest covers")
    args_digest: str | None = Field(None, description="sha256 of the tool and arguments alone")
    plan: ClusterPlan | None = Field(
        None, description="A gated cluster step's dry-run plan; its digest is in `digest`"
    )


class Todo(BaseModel):
    """The prototype's sections: title, meta, tasks, open questions, notes; and the
    revisions that reviews made on the pull request."""

    title: str
    meta: dict[str, str] = Field(default_factory=dict)
    tasks: list[Task] = Field(default_factory=list)
    open_questions: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    revisions: list[str] = Field(
        default_factory=list,
        description="One line per commit a review made on the pull request, oldest first.",
    )
    ci: list[str] = Field(
        default_factory=list,
        description="CI on the pull request's head: failed workflow, job and step; fixes tried.",
    )
    plan_link: str | None = Field(
        None, description="Markdown link to the check run that holds the full cluster plan"
    )

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    @property
    def finished(self) -> bool:
        return all(t.status in ("done", "skipped") for t in self.tasks)


_ICON = {
    "pending": "",
    "running": "⏳ ",
    "done": "",
    "failed": "❌ ",
    "skipped": "⏭️ ",
    "waiting_approval": "🔒 ",
    "blocked": "⛔ ",
}


def render_todo(todo: Todo, session_id: str) -> str:
    """The markdown of the todo comment, marker first. Pure: same todo, same text."""
    lines = [marker(session_id), f"## {todo.title}", ""]
    if todo.meta:
        lines.append(" · ".join(f"**{k}:** {v}" for k, v in todo.meta.items()))
        lines.append("")
    lines.append("### Tasks")
    for task in todo.tasks:
        box = "[x]" if task.status in ("done", "skipped") else "[ ]"
        detail = f" — {task.detail}" if task.detail else ""
        lines.append(f"- {box} {_ICON[task.status]}{task.title}{detail}")
    waiting = [t for t in todo.tasks if t.status == "waiting_approval" and t.digest]
    if waiting:
        lines += ["", "### Waiting for `/idp apply`"]
        lines += [_approval_line(t) for t in waiting]
        planned = [(t.title, t.plan) for t in waiting if t.plan is not None]
        if planned:
            lines += ["", *plan_section(planned, todo.plan_link)]
    sections = (
        ("Open questions", todo.open_questions),
        ("Notes", todo.notes),
        ("Revisions", todo.revisions),
        ("CI", todo.ci),
    )
    for heading, items in sections:
        if items:
            lines += ["", f"### {heading}", *(f"- {item}" for item in items)]
    return "\n".join(lines) + "\n"


def _approval_line(task: Task) -> str:
    """One call `/idp apply` would approve: tool, target, files and the digest it binds to."""
    files = f" · {task.applies} file{'s' if task.applies != 1 else ''}" if task.applies else ""
    target = f" → {task.target}" if task.target else ""
    return f"- 🔒 `{task.tool}`{target}{files} · digest `{short(task.digest)}`"
