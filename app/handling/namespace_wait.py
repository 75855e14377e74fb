"""Freeing namespace locks (app/locks/namespace.py) and letting their waiters go on:
`/idp unlock`, the App's pull request closed or merged, an apply after the merge.

A session that found its namespace held waits with its approval kept; when the lock is
freed, each waiter gets a job that re-runs `/idp apply` as the person who approved it
(their permission and the repository's apply requirements are checked again), so the
waiting step runs without anyone having to ask twice.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from app.domain.session import session_id_for
from app.grammar.commands import Command, Trigger
from app.locks.namespace import LockOwner, NamespaceLocks
from jobs.queue import enqueue_trigger

if TYPE_CHECKING:
    from app.handling.context import JobContext

RESUME_EVENT = "namespace_lock"


def namespace_locks(ctx: JobContext) -> NamespaceLocks:
    return NamespaceLocks(ctx.connection, ctx.settings)


def release_and_resume(ctx: JobContext, session_id: str) -> list[str]:
    """Free every namespace `session_id` holds and queue a continuation for each session
    that waited for one; the namespaces freed."""
    freed = namespace_locks(ctx).release_session(session_id)
    for namespace, waiters in freed.items():
        for waiter in waiters:
            if waiter.session_id != session_id:
                enqueue_trigger(ctx.connection, ctx.settings, resume_trigger(namespace, waiter))
    return sorted(freed)


def resume_trigger(namespace: str, waiter: LockOwner) -> Trigger:
    """`/idp apply` again for a session that waited for `namespace`, by who approved it, on
    the conversation it answers on (its pull request, or its issue)."""
    return Trigger(
        delivery_id=f"{RESUME_EVENT}:{namespace}:{waiter.session_id}:{uuid.uuid4().hex}",
        event=RESUME_EVENT,
        action="released",
        repo=waiter.repo,
        installation_id=waiter.installation_id,
        number=waiter.number,
        # A pull request's number leads to its session through the link the run stored.
        is_pull_request=waiter.session_id != session_id_for(waiter.repo, waiter.number),
        sender=waiter.who,
        commands=[Command(verb="apply", line="/idp apply")],
    )


async def unlock(ctx: JobContext, command: Command) -> str:
    """`/idp unlock`: free the namespaces this session holds; waiting sessions go on."""
    freed = release_and_resume(ctx, ctx.session_id)
    if not freed:
        await ctx.reply(
            "This session holds no namespace lock. A waiting session's todo names the pull "
            "request that holds its namespace; `/idp unlock` there releases it."
        )
        return "answered"
    names = ", ".join(f"`{n}`" for n in freed)
    await ctx.reply(
        f"🔓 Released the lock on namespace {names}. A session waiting for it goes on; "
        "this one takes the lock again at its next `/idp apply`."
    )
    return "done"


async def closed(ctx: JobContext, command: Command) -> str:
    """The App's pull request was closed without merging: its namespace locks go."""
    session = ctx.store.get(ctx.session_id)
    if session is None or session.pr_number != ctx.trigger.number:
        return "ignored"
    release_and_resume(ctx, session.id)
    return "done"


def after_apply(ctx: JobContext) -> None:
    """After an apply: a session whose pull request is merged keeps no lock (nothing
    unmerged is left to protect)."""
    session = ctx.store.get(ctx.session_id)
    if session is not None and session.merged_at is not None:
        release_and_resume(ctx, session.id)
