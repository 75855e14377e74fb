"""The upkeep schedule: a sweep job every IDP_UPKEEP_INTERVAL seconds (weekly by default).

RQ 3 has a cron scheduler, but it runs as a process of its own (`rq cron`); the App's
workers already run RQ's scheduler (`work(with_scheduler=True)`, for retries), so the sweep
is a scheduled job (`enqueue_at`) that schedules the next one when it runs. Its id names
its period (`upkeep-sweep-<n>`, at n × interval seconds after the epoch): every worker
that starts makes sure the next one exists, and however many do, there is one per period.

A sweep queues one `sweep` trigger per repository (app/handling/sweep.py), deduplicated per
period like a webhook delivery, so a sweep that runs twice queues nothing twice.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import redis
from rq import Queue
from rq.job import Job

from app.config import Settings
from app.grammar.commands import Command, Trigger
from app.handling.upkeep_records import known_repos
from app.state import SessionStore
from jobs.queue import enqueue_trigger, queue_for

log = logging.getLogger(__name__)

SWEEP_FUNC = "jobs.upkeep.run_sweep"
SENDER = "idp-copilot[bot]"
MAX_SESSIONS_READ = 10_000
_CHUNK = 200


def sweep_job_id(period: int) -> str:
    return f"upkeep-sweep-{period}"


def schedule_next(
    connection: redis.Redis, settings: Settings, clock: float | None = None
) -> str | None:
    """Make sure the next period's sweep is scheduled; its job id (None: sweeps are off)."""
    interval = settings.upkeep_interval
    if interval <= 0:
        return None
    period = int((time.time() if clock is None else clock) // interval) + 1
    job_id = sweep_job_id(period)
    if Job.exists(job_id, connection=connection):
        return job_id
    queue: Queue = queue_for(connection, settings)
    queue.enqueue_at(
        datetime.fromtimestamp(period * interval, UTC),
        SWEEP_FUNC,
        job_id=job_id,
        description=f"upkeep sweep {period}",
        result_ttl=interval,
        failure_ttl=interval,
    )
    log.info("upkeep sweep %s scheduled", job_id)
    return job_id


def repositories(connection: redis.Redis, settings: Settings) -> dict[str, int]:
    """Repository → installation id: those upkeep has seen, and those of sessions whose
    service pull request was merged."""
    found = known_repos(connection, settings)
    store = SessionStore(connection, settings)
    ids = store.list_ids(0, MAX_SESSIONS_READ - 1)
    for start in range(0, len(ids), _CHUNK):
        for session in store.get_many(ids[start : start + _CHUNK]):
            if session is not None and session.merged_at and session.installation_id:
                found.setdefault(session.repo, session.installation_id)
    return found


def sweep_now(connection: redis.Redis, settings: Settings, period: int) -> int:
    """Queue one sweep trigger per repository for `period`; how many were queued."""
    queued = 0
    for repo, installation in sorted(repositories(connection, settings).items()):
        trigger = sweep_trigger(repo, installation, period)
        queued += int(enqueue_trigger(connection, settings, trigger))
    return queued


def sweep_trigger(repo: str, installation_id: int, period: int) -> Trigger:
    """The job of one repository's sweep, deduplicated per period like a delivery."""
    return Trigger(
        delivery_id=f"upkeep-sweep:{period}:{repo.lower()}",
        event="schedule",
        action="sweep",
        repo=repo,
        installation_id=installation_id,
        number=0,
        sender=SENDER,
        commands=[Command(verb="sweep")],
        # The operator's schedule, not a person: no one's permission to look up.
        authorized_permission="write",
    )


def run_sweep() -> dict[str, int]:
    """The RQ entry point of a scheduled sweep: queue the repositories, schedule the next."""
    from jobs.tasks import worker_context

    settings, connection = worker_context()
    interval = max(settings.upkeep_interval, 1)
    period = int(time.time() // interval)
    queued = sweep_now(connection, settings, period)
    schedule_next(connection, settings)
    return {"repositories": queued}
