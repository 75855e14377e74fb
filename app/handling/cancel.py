"""Cancel: the session is marked cancelled and the job running it is stopped for real.

`cancel_session` is the one cancel: `/idp cancel` (here), the operator API and the console
(app/api/control.py) call it. It raises the session's cancel flag (app/cancel_flag.py), which
the agent reads with one `EXISTS` per step.

Every job registers itself under its session while it runs (a Redis set, so a job still
waiting for the session's lock is found too), and the agent run stores its job id on the
session. Cancel stops those jobs with RQ's `send_stop_job_command`: the worker kills the work
horse and marks the job STOPPED, which RQ never retries. The killed run cannot release the
session lock, so cancel frees it once the job is confirmed stopped. Queued commands that would
run the agent again are dropped: after a cancel, only a new command resumes the session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from app.agent.outcomes import Cancelled
from app.agent.publisher import Publisher
from app.cancel_flag import CancelFlag
from app.config import Settings
from app.grammar.commands import Command
from app.handling.agent_run import session_id_of
from app.session_line import SessionLine
from app.state import Session, SessionStore, write_session
from jobs.queue import queue_for

if TYPE_CHECKING:
    from app.handling.context import JobContext

log = logging.getLogger(__name__)

STOP_WAIT_SECONDS = 5.0
CANCEL_PREFIX = "Cancelled"
NOTHING_TO_CANCEL = ("done", "cancelled")
# Queued commands a cancel drops: those that would run the agent again. A queued merge is
# kept (it records a fact), and so are answers such as `/idp status`.
AGENT_VERBS = frozenset({"create-service", "request", "plan", "retry", "answer", "apply", "deploy"})


def _running_key(settings: Settings, session_id: str) -> str:
    return settings.key("running", session_id)


def register_running(
    connection: redis.Redis, settings: Settings, session_id: str, job_id: str
) -> None:
    """Note that `job_id` works on the session (until `unregister_running` or the timeout)."""
    key = _running_key(settings, session_id)
    pipe = connection.pipeline(transaction=True)
    pipe.sadd(key, job_id)
    pipe.expire(key, settings.job_timeout + 60)
    pipe.execute()


def unregister_running(
    connection: redis.Redis, settings: Settings, session_id: str, job_id: str
) -> None:
    connection.srem(_running_key(settings, session_id), job_id)


def _trigger_session(connection: redis.Redis, settings: Settings, job: Job) -> str | None:
    trigger = (job.kwargs or {}).get("trigger")
    if not isinstance(trigger, dict):
        return None
    try:
        repo, number = str(trigger["repo"]), int(trigger["number"])
    except (KeyError, TypeError, ValueError):
        return None
    return session_id_of(connection, settings, repo, number, bool(trigger.get("is_pull_request")))


def _verbs(job: Job) -> set[str]:
    trigger = (job.kwargs or {}).get("trigger") or {}
    return {str(c.get("verb")) for c in trigger.get("commands") or [] if isinstance(c, dict)}


def session_jobs(
    connection: redis.Redis,
    settings: Settings,
    session: Session | None,
    session_id: str,
    exclude: str | None = None,
) -> tuple[list[Job], list[Job]]:
    """The session's queued jobs that would run the agent, and its jobs a worker runs now
    (never the caller's own). Running jobs are found through their registration, the
    session's `job_id`, and RQ's started registry (a job that has just started may not have
    registered yet)."""
    queue = queue_for(connection, settings)
    started = StartedJobRegistry(queue.name, connection=connection)
    raw = connection.smembers(_running_key(settings, session_id))
    ids = {r.decode() if isinstance(r, bytes) else r for r in raw}
    if session is not None and session.job_id:
        ids.add(session.job_id)
    ids.update(started.get_job_ids())
    ids.discard(exclude or "")
    running = [
        j
        for j in Job.fetch_many(sorted(ids), connection=connection)
        if j is not None
        and j.get_status() == JobStatus.STARTED
        and _trigger_session(connection, settings, j) == session_id
    ]
    # Jobs waiting in the session's line (jobs/session_line.py) are queued work too.
    waiting = SessionLine(connection, settings).waiting(session_id)
    queued = [
        j
        for j in Job.fetch_many(queue.get_job_ids() + waiting, connection=connection)
        if j is not None
        and j.id != exclude
        and _verbs(j) & AGENT_VERBS
        and _trigger_session(connection, settings, j) == session_id
    ]
    return queued, running


def stop_jobs(connection: redis.Redis, jobs: list[Job]) -> list[str]:
    """Ask each job's worker to kill it; the ids of the jobs it was asked to stop."""
    stopped = []
    for job in jobs:
        try:
            send_stop_job_command(connection, job.id)
        except (InvalidJobOperation, NoSuchJobError):  # it finished a moment ago
            continue
        stopped.append(job.id)
    return stopped


def wait_stopped(connection: redis.Redis, job_ids: list[str], timeout: float) -> bool:
    """True once none of the jobs is running any more (False after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = Job.fetch_many(job_ids, connection=connection)
        if all(j is None or j.get_status() != JobStatus.STARTED for j in jobs):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def mark_cancelled(connection: redis.Redis, settings: Settings, session_id: str) -> bool:
    """Set the stored status in one optimistic transaction (a running step may be saving);
    False when there is no such session."""
    key = settings.key("session", session_id)
    with connection.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                if raw is None:
                    return False
                session = Session.model_validate_json(raw)
                session.status = "cancelled"
                session.updated_at = time.time()
                pipe.multi()
                write_session(pipe, settings, session)
                pipe.execute()
                return True
            except redis.WatchError:
                continue


def settle_cancelled(session: Session, by: str) -> None:
    """The todo after a cancel: interrupted tasks back to pending, one cancellation note."""
    session.status = "cancelled"
    session.job_id = None
    if session.todo is None:
        return
    for task in session.todo.tasks:
        if task.status == "running":
            task.status, task.detail = "pending", "stopped by `/idp cancel`"
    notes = [n for n in session.todo.notes if not n.startswith(CANCEL_PREFIX)]
    session.todo.notes = [*notes, Cancelled(by=by).message]


def resume_after_cancel(session: Session) -> None:
    """A new command on a cancelled session: it runs again, without the cancellation note."""
    if session.status == "cancelled":
        session.status = "new"
    if session.todo is not None:
        session.todo.notes = [n for n in session.todo.notes if not n.startswith(CANCEL_PREFIX)]
        for task in session.todo.tasks:
            if task.status == "running":
                task.status, task.detail = "pending", None


@dataclass
class CancelOutcome:
    """What a cancel did: whether there was anything to cancel, the session's status before,
    the queued jobs it dropped and the running ones it stopped."""

    cancelled: bool
    state: str
    dropped: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    session: Session | None = None


def cancel_session(
    connection: redis.Redis,
    settings: Settings,
    session_id: str,
    by: str,
    *,
    exclude: str | None = None,
    wait: float = STOP_WAIT_SECONDS,
) -> CancelOutcome:
    """The one cancel, for `/idp cancel`, the operator API and the console: raise the cancel
    flag, mark the session cancelled, drop its queued agent commands (and their place in the
    session's line), stop its running job and free the lock it held, and settle the todo.
    `exclude`: the caller's own job. Blocking (it waits up to `wait` seconds for the stop)."""
    store = SessionStore(connection, settings)
    session = store.get(session_id)
    queued, jobs = session_jobs(connection, settings, session, session_id, exclude)
    if not jobs and not queued and (session is None or session.status in NOTHING_TO_CANCEL):
        return CancelOutcome(False, "not started" if session is None else session.status)
    state = "not started" if session is None else session.status
    CancelFlag(connection, settings).set(session_id)
    mark_cancelled(connection, settings, session_id)
    for job in queued:
        job.cancel()
    line = SessionLine(connection, settings)
    line.release_reserved(session_id, [j.id for j in queued])
    stopped = stop_jobs(connection, jobs)
    if stopped:
        if wait_stopped(connection, stopped, wait):
            # The killed run held the lock; nothing else can (runs are one at a time). The
            # next job in the session's line, if any, gets it.
            line.free(session_id)
        else:
            log.warning("jobs %s of %s did not stop in time", stopped, session_id)
    # A step that was saving while we marked the session may have written its old status
    # back; its job is stopped now, so this save is the last word.
    session = store.get(session_id)
    if session is not None:
        settle_cancelled(session, by)
        store.save(session)
    dropped = [j.id for j in queued]
    log.info("session %s cancelled by %s; stopped %s, dropped %s", session_id, by, stopped, dropped)
    return CancelOutcome(True, state, dropped, stopped, session)


async def cancel(ctx: JobContext, command: Command) -> str:
    """`/idp cancel`: cancel the session (`cancel_session`), then show it in the todo."""
    done = await asyncio.to_thread(
        cancel_session,
        ctx.connection,
        ctx.settings,
        ctx.session_id,
        ctx.trigger.sender,
        exclude=ctx.job_id,
    )
    if not done.cancelled:
        await ctx.reply(f"Nothing to cancel: this session is {done.state}. `/idp status` shows it.")
        return "answered"
    session = done.session
    if session is not None and await Publisher(ctx.forge, ctx.settings).sync_todo(
        session, ctx.repo
    ):
        ctx.store.save(session)
    return "cancelled"
