"""Approval and the life of the App's pull request: `/idp apply`, `/idp deploy staging`, and
the merge (`pull_request.closed` with merged=true, routed as the internal verb `merged`).

Approval is the session's `approved_by`: the loop lets approval-gated tools (namespace,
deploy, repository creation) run only while it is set. A merge approves the staging deploy
only when the repo's config turns `auto_deploy_on_merge` on and takes the cluster tools off
its `approval_required` list; otherwise the deploy keeps waiting for `/idp apply`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from app.agent.todo import Task
from app.commands import Command
from app.repo_config import RepoConfig
from app.state import Session
from jobs.agent_run import run_agent
from jobs.cancel import resume_after_cancel

if TYPE_CHECKING:
    from jobs.handlers import JobContext

DEPLOY_TOOLS = ("create_k8s_namespace", "deploy_to_staging")


def _waiting(session: Session | None, tools: tuple[str, ...] | None = None) -> list[Task]:
    if session is None or session.todo is None:
        return []
    return [
        t
        for t in session.todo.tasks
        if t.status == "waiting_approval" and (tools is None or t.tool in tools)
    ]


async def _approve(ctx: JobContext, tools: tuple[str, ...] | None, nothing: str) -> str:
    session = ctx.store.get(ctx.session_id)
    if not _waiting(session, tools):
        await ctx.reply(nothing)
        return "answered"

    def prepare(s: Session) -> bool:
        if not _waiting(s, tools):
            return False
        resume_after_cancel(s)
        s.approved_by = ctx.trigger.sender
        return True

    return await run_agent(ctx, prepare)


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
    )


def merge_approves_deploy(config: RepoConfig) -> bool:
    """True when the config lets a merge stand in for `/idp apply` on the staging deploy."""
    return config.auto_deploy_on_merge and not any(
        tool in config.approval_required for tool in DEPLOY_TOOLS
    )


async def merged(ctx: JobContext, command: Command) -> str:
    """The App's pull request was merged: note it on the session and in the todo, and move
    on to the staging deploy when the config asks for it."""
    session = ctx.store.get(ctx.session_id)
    if session is None or session.pr_number != ctx.trigger.number:
        return "ignored"  # not a pull request of one of our sessions
    sender = ctx.trigger.sender

    def prepare(s: Session) -> bool:
        if s.merged_at is not None:
            return False  # a redelivered merge event
        s.merged_at, s.merged_by = time.time(), sender
        note = f"Pull request #{s.pr_number} was merged by {sender}."
        if ctx.config.auto_deploy_on_merge and _waiting(s, DEPLOY_TOOLS):
            if merge_approves_deploy(ctx.config):
                s.approved_by = s.approved_by or sender
                note += " Deploying to staging (`auto_deploy_on_merge`)."
            else:
                note += " The staging deploy waits for `/idp apply` from a maintainer."
        if s.todo is not None and note not in s.todo.notes:
            s.todo.notes.append(note)
        return True

    return await run_agent(ctx, prepare)
