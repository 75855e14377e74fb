"""Sessions as the API shows them: a short summary for lists, the whole story for one.

Session ids hold `/` and `#` (`owner/repo#12`); in URLs a session is three path segments,
`/api/sessions/owner/repo/12`, and every document carries its own links.
"""

from __future__ import annotations

from typing import Any

from app.domain.session import Session


def session_path(session: Session) -> str:
    """The URL-safe path of a session: `owner/repo/number`."""
    return f"{session.repo}/{session.number}"


def title_of(session: Session) -> str:
    if session.todo is not None and session.todo.title:
        return session.todo.title
    if session.request is not None:
        return f"New service {session.request.name}"
    if session.request_text:
        return session.request_text.strip().splitlines()[0][:120]
    return session.command or "session"


def is_web_url(url: str | None) -> bool:
    """True for a pull request GitHub shows; LocalForge pull requests live on this server."""
    return bool(url) and str(url).startswith(("https://", "http://"))


def session_summary(session: Session, feedback: dict[str, int] | None = None) -> dict[str, Any]:
    """The list's view of a session; `feedback` is its 👍/👎 counts where the caller has them."""
    tasks = session.todo.tasks if session.todo is not None else []
    path = session_path(session)
    summary = {
        "id": session.id,
        "repo": session.repo,
        "number": session.number,
        "status": session.status,
        "command": session.command,
        "requester": session.requester,
        "title": title_of(session),
        "tasks": {
            "done": sum(1 for t in tasks if t.status in ("done", "skipped")),
            "total": len(tasks),
        },
        "pr_url": session.pr_url,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "url": f"/api/sessions/{path}",
        "console_url": f"/console/sessions/{path}",
    }
    if feedback is not None:
        summary["feedback"] = feedback
    return summary


def session_detail(session: Session, dry_run: bool) -> dict[str, Any]:
    """Everything about one session: todo, steps (tool calls and results), pull request,
    timings and token usage."""
    path = f"/api/sessions/{session_path(session)}"
    steps = [
        {
            "task": step.task_id,
            "tool": step.tool,
            "args": step.args,
            "ok": step.ok,
            "output": step.output,
            "error": step.error,
            "started_at": step.started_at,
            "finished_at": step.finished_at,
            "seconds": round(step.finished_at - step.started_at, 3),
        }
        for step in session.steps
    ]
    pull_request = None
    if session.pr_number is not None or session.pr_url:
        pull_request = {
            "number": session.pr_number,
            "url": session.pr_url,
            "branch": session.branch,
            "head_sha": session.head_sha,
        }
    return {
        **session_summary(session),
        "dry_run": dry_run,
        "is_pull_request": session.is_pull_request,
        "request": session.request.model_dump(mode="json") if session.request else None,
        "request_text": session.request_text,
        "todo": session.todo.model_dump(mode="json") if session.todo else None,
        "steps": steps,
        "pull_request": pull_request,
        "files": sorted(session.files),
        "comment_id": session.comment_id,
        "approved_by": session.approved_by,
        "timings": {
            "created_at": session.created_at,
            "updated_at": session.updated_at,
            "elapsed_seconds": round(session.updated_at - session.created_at, 3),
            "tool_seconds": round(sum(s["seconds"] for s in steps), 3),
        },
        "token_usage": dict(session.token_usage),
        "links": {
            "self": path,
            "events": f"{path}/events",
            "messages": f"{path}/messages",
            "cancel": f"{path}/cancel",
        },
    }
