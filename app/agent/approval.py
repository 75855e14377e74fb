"""Approval bound to what was shown: each gated call's scope and digest, the check before it
runs for real, and voiding an approval whose call changed.

`/idp apply` approves the digests the todo lists (app/domain/approval.py). Before a gated call
runs, its digest is computed again from the final arguments and the workspace; a call whose
digest no approval names goes back to waiting, and an approval for that task with another
digest is voided with a note. A call that applies files also reads them from the branch head
through the Forge, and applies them only when their digest is the approved one. A cluster
step is dry-run again first: when its plan (app/agent/change_plan.py) is not the approved
one, nothing is applied and it waits for a new approval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.agent.outcomes import NeedsApproval
from app.domain.approval import ApprovalScope, approval_digest, short
from app.domain.plan import ClusterPlan
from app.domain.session import Approval, Session
from app.domain.todo import Task
from app.github.forge import Forge, RepoRef
from tools.spec import ToolSpec

READ_CONCURRENCY = 8
VOID_PREFIX = "🔓 Approval voided"


@dataclass(frozen=True)
class CallScope:
    """A gated call as `/idp apply` sees it."""

    tool: str
    target: str
    files: dict[str, str]
    digest: str
    args_digest: str


def scope_of(
    spec: ToolSpec,
    args: dict[str, Any],
    workspace: dict[str, str],
    repo: RepoRef | None,
    settings: Any = None,
    plan: ClusterPlan | None = None,
) -> CallScope:
    """The target, files and digest of `spec` called with `args` (the final arguments);
    a cluster step's digest covers its `plan` too."""
    target, files = "", {}
    if spec.approval_scope is not None:
        try:
            found: ApprovalScope = spec.approval_scope(
                spec.input_model.model_validate(args), workspace, repo, settings
            )
            target, files = found.target, found.files
        except ValidationError:
            target = "arguments the tool refuses"
    return CallScope(
        spec.name,
        target,
        files,
        approval_digest(spec.name, args, files, target, plan.digest if plan else None),
        approval_digest(spec.name, args, {}, target),
    )


def show(task: Task, scope: CallScope) -> None:
    """Put what `/idp apply` would approve on the task (the todo lists it)."""
    task.target, task.digest, task.applies = scope.target, scope.digest, len(scope.files)
    task.args_digest = scope.args_digest


def void(session: Session, approval: Approval, now: CallScope, why: str | None = None) -> str:
    """Drop `approval` and say why in the todo's notes; returns the note."""
    session.approvals = [a for a in session.approvals if a is not approval]
    if not session.approvals:
        session.approved_by = None  # the model's prompt no longer says it may go on
    if why is None:
        changed = "files" if approval.args_digest == now.args_digest else "arguments or target"
        why = f"{changed} changed since `@{approval.by}` approved digest `{short(approval.digest)}`"
    note = (
        f"{VOID_PREFIX} for `{approval.tool}`: {why}. It waits for `/idp apply` again "
        f"(digest now `{short(now.digest)}`)."
    )
    if session.todo is not None and note not in session.todo.notes:
        session.todo.notes.append(note)
    return note


def stale_approval(session: Session, task_id: str | None, scope: CallScope) -> Approval | None:
    """The approval given for this task whose digest is not the call's now. A call that
    carries out no planned task voids nothing: it was never shown, so never approved."""
    for approval in session.approvals:
        mine = task_id is not None and approval.task_id == task_id
        if mine and approval.tool == scope.tool and approval.digest != scope.digest:
            return approval
    return None


def refresh(session: Session, scope_for: Callable[[Task], CallScope | None]) -> list[Task]:
    """Recompute what each open gated task would apply; void approvals whose task changed.
    `scope_for` gives a task's scope, None for a task that is not gated. Returns the tasks
    that were approved but now wait again."""
    back: list[Task] = []
    if session.todo is None:
        return back
    for task in session.todo.tasks:
        if task.status in ("done", "skipped", "failed", "blocked"):
            continue
        scope = scope_for(task)
        if scope is None:
            continue
        show(task, scope)
        stale = stale_approval(session, task.id, scope)
        if stale is not None and session.approval_for(scope.tool, scope.digest) is None:
            void(session, stale, scope)
            back.append(task)
    return back


def head_ref(session: Session) -> str | None | bool:
    """Where the App's files live now: the pull request's branch, the default branch once it
    is merged (None), or False when nothing was pushed yet."""
    if not session.branch:
        return False
    return None if session.merged_at is not None else session.branch


async def read_head(
    forge: Forge, repo: RepoRef, session: Session, paths: list[str]
) -> dict[str, str] | None:
    """The branch head's version of `paths` (a deleted file is left out), or None when the
    session has pushed nothing, so its workspace is all there is."""
    ref = head_ref(session)
    if ref is False:
        return None
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(path: str) -> tuple[str, str | None]:
        async with gate:
            return path, await forge.read_file(repo, path, ref=ref or None)

    found = await asyncio.gather(*(read(p) for p in sorted(paths)))
    return {path: text for path, text in found if text is not None}


async def approved_workspace(
    forge: Forge,
    repo: RepoRef,
    s: Session,
    spec: ToolSpec,
    args: dict[str, Any],
    task_id: str | None,
    emit: Callable[[str, dict[str, Any]], None],
    settings: Any = None,
    *,
    shown: ClusterPlan | None = None,
    planner: Callable[[dict[str, str]], Awaitable[ClusterPlan]] | None = None,
) -> dict[str, str]:
    """The workspace an approved gated call runs with, its files read from the branch head
    and checked against the approved digest; `shown` is the plan the todo showed, `planner`
    makes it again on that workspace. Raises `NeedsApproval` when no approval names the
    call's digest (voiding one given for other files, arguments or plan)."""
    scope = scope_of(spec, args, s.files, repo, settings, shown)
    approval = s.approval_for(spec.name, scope.digest)
    if approval is None:
        if (stale := stale_approval(s, task_id, scope)) is not None:
            emit("note", {"note": void(s, stale, scope)})
        raise NeedsApproval(spec.name, task_id)
    head = await read_head(forge, repo, s, list(scope.files)) if scope.files else None
    workspace = dict(s.files)
    if head is not None:
        workspace = {p: t for p, t in s.files.items() if p not in scope.files} | head
        now = scope_of(spec, args, workspace, repo, settings, shown)
        if now.digest != approval.digest:
            # Someone committed on the branch after the approval: the workspace follows the
            # branch, so the todo shows the digest of what is there now, for a new approval.
            s.files = workspace
            where = f"branch {s.branch}" if s.merged_at is None else "the default branch"
            why = (
                f"the files on {where} are not the ones `@{approval.by}` approved (digest "
                f"`{short(approval.digest)}`), so nothing was applied"
            )
            emit("note", {"note": void(s, approval, now, why)})
            raise NeedsApproval(spec.name, task_id)
    if planner is None:
        return workspace
    plan = await planner(workspace)
    now = scope_of(spec, args, workspace, repo, settings, plan)
    if now.digest == approval.digest:
        return workspace
    why = (
        f"the dry run now plans other changes than the plan `@{approval.by}` approved (digest "
        f"`{short(approval.digest)}`): the live objects or the cluster's answer changed, so "
        "nothing was applied"
    )
    emit("note", {"note": void(s, approval, now, why)})
    raise NeedsApproval(spec.name, task_id)
