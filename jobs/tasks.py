"""Job functions run by the RQ worker. Settings and Redis are built once per worker process."""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

import redis
from rq.job import Job

from app.agent.providers.base import ChatModel
from app.audit import AuditLog
from app.config import Settings, load_settings
from app.github.factory import make_forge
from app.github.forge import Forge, RepoRef
from app.grammar.commands import Trigger
from app.handling.agent_run import session_id_of
from app.handling.audited import AuditedForge, AuditScope
from app.handling.cancel import register_running, unregister_running
from app.handling.context import JobContext
from app.handling.handlers import handle_trigger
from app.session_line import (
    SessionLine,
    SessionQueued,
    Waiter,
    continuation_id,
    deferred_fields,
)
from app.state import SessionStore, connect
from app.tracing import inject_context
from jobs.queue import job_hash
from tools.registry import ToolRegistry

log = logging.getLogger(__name__)


@cache
def worker_context() -> tuple[Settings, redis.Redis]:
    """The worker's settings and Redis client (forked job processes inherit them)."""
    settings = load_settings()
    return settings, connect(settings)


def run_trigger(trigger: dict[str, Any]) -> dict[str, str]:
    """The RQ entry point for one webhook delivery: the job's span, log context and
    workflow metrics (app/telemetry.py) around `run_parsed`."""
    from rq import get_current_job

    from app.telemetry import observe_job

    settings, connection = worker_context()
    parsed = Trigger.model_validate(trigger)
    session_id = session_id_of(
        connection, settings, parsed.repo, parsed.number, parsed.is_pull_request
    )
    with observe_job(trigger, get_current_job(), session_id=session_id) as observed:
        return observed.finish(asyncio.run(run_parsed(parsed, settings, connection)))


def _current_job_id() -> str | None:
    from rq import get_current_job

    job = get_current_job()
    return job.id if job is not None else None


async def run_parsed(
    trigger: Trigger,
    settings: Settings,
    connection: redis.Redis,
    *,
    forge: Forge | None = None,
    registry: ToolRegistry | None = None,
    chat_model: ChatModel | None = None,
    cluster: Any = None,
) -> dict[str, str]:
    """Build the job's context and handle the trigger (also used in-process by the CLI and
    tests). `forge`, `registry`, `chat_model` and `cluster` default to what the settings
    choose; tests pass stand-ins."""
    if trigger.dry_run and settings.uses_github:
        settings = settings.model_copy(update={"forge": "local"})
    if chat_model is None:
        from app.agent.providers.factory import make_chat_model

        chat_model = make_chat_model(settings)
    from app.agent.providers.budgeted import budgeted

    chat_model = budgeted(chat_model, connection, settings, trigger.installation_id)
    session_id = session_id_of(
        connection, settings, trigger.repo, trigger.number, trigger.is_pull_request
    )
    store = SessionStore(connection, settings)
    stored = store.get(session_id)
    scope = AuditScope(AuditLog(connection, settings), session_id, trigger.sender)
    known = {stored.branch} if stored is not None and stored.branch else set()
    ctx = JobContext(
        settings=settings,
        connection=connection,
        forge=AuditedForge(forge or make_forge(settings, connection), scope, known),
        store=store,
        trigger=trigger,
        repo=RepoRef.parse(trigger.repo, trigger.installation_id),
        session_id=session_id,
        scope=scope,
        registry=registry,
        chat_model=chat_model,
        cluster=cluster,
        job_id=_current_job_id(),
    )
    if ctx.job_id is not None and connection.exists(Job.key_for(continuation_id(ctx.job_id))):
        # This job joined its session's line before and was run again (its worker died after
        # that): its continuation runs the commands, once.
        return {"deferred": continuation_id(ctx.job_id)}
    store.line = SessionLine(connection, settings, lambda: waiter_for(ctx))
    # `SessionLocked` (a caller outside RQ waited its time) propagates as before.
    if ctx.job_id is not None:
        register_running(connection, settings, session_id, ctx.job_id)
    try:
        return await handle_trigger(ctx)
    except SessionQueued as queued:
        # The rest of the trigger runs as the continuation, once the session's run is over.
        return {"deferred": queued.continuation_id}
    finally:
        if ctx.job_id is not None:
            unregister_running(connection, settings, session_id, ctx.job_id)


def remaining(trigger: Trigger, verb: str | None) -> Trigger:
    """The trigger from its first `verb` command on: what a job that found the session
    busy at that command still has to run (the commands before it have run)."""
    verbs = [c.verb for c in trigger.commands]
    if verb not in verbs:
        return trigger
    return trigger.model_copy(update={"commands": trigger.commands[verbs.index(verb) :]})


def waiter_for(ctx: JobContext) -> Waiter | None:
    """How this job waits for a busy session: a continuation job of its remaining commands
    (same delivery id, so replies already posted are not posted again). None outside RQ."""
    if ctx.job_id is None:
        return None
    trigger = remaining(ctx.trigger, ctx.scope.command)
    fields = job_hash(ctx.settings, trigger, inject_context())
    return Waiter(ctx.job_id, continuation_id(ctx.job_id), deferred_fields(fields))
