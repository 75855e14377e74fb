"""Approval and the life of the App's pull request: `/idp apply`, `/idp deploy staging`, and
the merge (`pull_request.closed` with merged=true, routed as the internal verb `merged`).

`/idp apply` approves the digests the todo lists for the waiting tasks (app/agent/approval.py):
the loop runs a gated call for real only when an approval names its digest. A merge approves
the staging deploy only when the repo's config turns `auto_deploy_on_merge` on and takes the
cluster tools off its `approval_required` list, and only when the merger, or someone who
approved the pull request, holds the permission `apply` needs; otherwise the deploy keeps
waiting for `/idp apply`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.domain.session import Approval, Session
from app.domain.todo import Task
from app.github.errors import ForgeError
from app.github.forge import PERMISSION_RANK
from app.grammar.commands import Command
from app.handling import apply_requirements, namespace_wait
from app.handling.agent_run import run_agent
from app.handling.cancel import resume_after_cancel
from app.repo_config import RepoConfig, required_permission

if TYPE_CHECKING:
    from app.handling.context import JobContext

DEPLOY_TOOLS = ("create_k8s_namespace", "deploy_to_staging")


def _tool_name(ctx: JobContext) -> Callable[[str], str]:
    registry = ctx.tools()
    return lambda name: registry.get(name).name if name in registry else name


def _waiting(session: Session | None, tools: tuple[str, ...] | None = None) -> list[Task]:
    if session is None or session.todo is None:
        return []
    return [
        t
        for t in session.todo.tasks
        if t.status == "waiting_approval" and (tools is None or t.tool in tools)
    ]


async def _approve(
    ctx: JobContext, tools: tuple[str, ...] | None, nothing: str, verb: str = "apply"
) -> str:
    session = ctx.store.get(ctx.session_id)
    if not _waiting(session, tools):
        await ctx.reply(nothing)
        return "answered"
    if await apply_requirements.refused(ctx, verb):
        return "refused"

    def prepare(s: Session) -> bool:
        if not _waiting(s, tools):
            return False
        resume_after_cancel(s)
        approve(s, _waiting(s, tools), ctx.trigger.sender, _tool_name(ctx))
        return True

    outcome = await run_agent(ctx, prepare)
    namespace_wait.after_apply(ctx)
    return outcome


def approve(session: Session, tasks: list[Task], by: str, tool_name: Callable[[str], str]) -> None:
    """Approve the digest each task shows in the todo, nothing more: the loop checks it
    again before the call runs, against the files on the branch head. `tool_name` gives a
    tool's registered name (the plan may use an alias)."""
    for task in tasks:
        if not task.tool or not task.digest:
            continue
        tool = tool_name(task.tool)
        if session.approval_for(tool, task.digest) is None:
            session.approvals.append(
                Approval(
                    task_id=task.id,
                    tool=tool,
                    digest=task.digest,
                    args_digest=task.args_digest,
                    by=by,
                )
            )
    session.approved_by = by


async def apply(ctx: JobContext, command: Command) -> str:
    """`/idp apply`: approve the session; the steps waiting for approval run now."""
    return await _approve(
        ctx,
        None,
        "Nothing here is waiting for approval. `/idp status` shows where the session is.",
    )


async def deploy(ctx: JobContext, command: Command) -> str:
    """`/idp deploy staging`: approve and run the staging namespace and deploy steps."""
    return await _approve(
        ctx,
        DEPLOY_TOOLS,
        "There is no staging deploy waiting here: it runs once the pull request's files are "
        "generated, and only once. `/idp status` shows where the session is.",
        verb="deploy staging",
    )


def merge_approves_deploy(config: RepoConfig) -> bool:
    """True when the config lets a merge stand in for `/idp apply` on the staging deploy."""
    return config.auto_deploy_on_merge and not any(
        tool in config.approval_required for tool in DEPLOY_TOOLS
    )


MAX_REVIEWERS_CHECKED = 10  # each is a permission read; a merge needs only one who may apply


async def merge_approver(ctx: JobContext) -> str | None:
    """Who lets a merge approve the deploy: the merger when they hold the permission `apply`
    needs here, else the first approving reviewer who does; None when nobody does."""
    needed = PERMISSION_RANK[required_permission(ctx.config, "apply")]
    merger = ctx.trigger.sender
    candidates = [merger]
    try:
        reviews = await ctx.forge.list_reviews(ctx.repo, ctx.trigger.number)
    except ForgeError:
        reviews = []  # the merger alone may still qualify; otherwise `/idp apply` is needed
    latest: dict[str, tuple[str, str]] = {}
    for review in reviews:  # a reviewer's last approval or change request is what counts
        if review.state in ("approved", "changes_requested", "dismissed"):
            latest[review.author.lower()] = (review.author, review.state)
    candidates += [who for who, state in latest.values() if state == "approved"]
    for login in list(dict.fromkeys(candidates))[:MAX_REVIEWERS_CHECKED]:
        if login.lower().endswith("[bot]"):
            continue
        if PERMISSION_RANK.get(await ctx.forge.permission(ctx.repo, login), 0) >= needed:
            return login
    return None


async def merged(ctx: JobContext, command: Command) -> str:
    """The App's pull request was merged: note it on the session and in the todo, and move
    on to the staging deploy when the config asks for it and someone who may apply (the
    merger or an approving reviewer) stands behind the merge."""
    session = ctx.store.get(ctx.session_id)
    if session is None or session.pr_number != ctx.trigger.number:
        return "ignored"  # not a pull request of one of our sessions
    sender = ctx.trigger.sender
    approver = None
    if (
        session.merged_at is None
        and merge_approves_deploy(ctx.config)
        and _waiting(session, DEPLOY_TOOLS)
    ):
        approver = await merge_approver(ctx)
    needed = required_permission(ctx.config, "apply")

    def prepare(s: Session) -> bool:
        if s.merged_at is not None:
            return False  # a redelivered merge event
        s.merged_at, s.merged_by = time.time(), sender
        note = f"Pull request #{s.pr_number} was merged by {sender}."
        if ctx.config.auto_deploy_on_merge and _waiting(s, DEPLOY_TOOLS):
            if not merge_approves_deploy(ctx.config):
                note += " The staging deploy waits for `/idp apply` from a maintainer."
            elif approver is None:
                note += (
                    f" Neither the merger nor an approving reviewer has **{needed}** "
                    "permission, which `auto_deploy_on_merge` needs: the staging deploy waits "
                    "for `/idp apply`."
                )
            else:
                approve(s, _waiting(s, DEPLOY_TOOLS), approver, _tool_name(ctx))
                by = "" if approver == sender else f", approved by {approver}"
                note += f" Deploying to staging (`auto_deploy_on_merge`{by})."
        if s.todo is not None and note not in s.todo.notes:
            s.todo.notes.append(note)
        return True

    outcome = await run_agent(ctx, prepare)
    # Merged: the namespace holds what is on the default branch now; others may apply.
    namespace_wait.release_and_resume(ctx, ctx.session_id)
    return outcome
