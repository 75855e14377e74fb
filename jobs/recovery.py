"""Runs whose worker died (SIGKILL, OOM, a lost node) go back on the queue within ~10 s.

RQ counts a job as abandoned once its execution's heartbeat TTL has run out (the
monitoring interval + 60 s) and then retries it through the scheduler after the job's first
`Retry` interval; behind a killed worker that took about 100 s (bench/recovery.py). A live
worker renews the heartbeat of the job it runs every `JOB_MONITORING_INTERVAL` seconds, so a
heartbeat several intervals old means the worker is gone: `requeue_abandoned` puts such a
job back at the front of its queue at once, counting one of its retries. A job without
retries left stays where it is, and RQ's own clean-up records it as failed.

Running a job twice is safe: the session lock keeps runs of one session apart, and every
side effect is keyed, so the new run resumes after the last completed step.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import WatchError
from rq import Queue
from rq.executions import Execution
from rq.job import Job, JobStatus

log = logging.getLogger(__name__)


def requeue_abandoned(queue: Queue, stale_after: float, now: float | None = None) -> list[str]:
    """Put the jobs of `queue` whose worker stopped heartbeating more than `stale_after`
    seconds ago back at the front of the queue; returns their ids. Safe to call from many
    workers at once: each job is claimed in a transaction that watches the job's hash."""
    registry = queue.started_job_registry
    connection = queue.connection
    now = time.time() if now is None else now
    requeued: list[str] = []
    for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
        try:
            execution = Execution.fetch(execution_id, job_id, connection)
        except ValueError:
            continue  # its record expired: RQ's own clean-up handles the entry
        silent = now - execution.last_heartbeat.timestamp()
        if silent <= stale_after:
            continue
        job = queue.fetch_job(job_id)
        if job is None or not job.retries_left:
            continue  # out of retries: RQ's clean-up moves it to the failed registry
        if _claim(queue, job, execution.composite_key):
            requeued.append(job.id)
            log.warning(
                "job %s: its worker %s went silent %.0f s ago; queued again (%d retries left)",
                job.id,
                execution.worker_name or "(unknown)",
                silent,
                job.retries_left,
            )
    return requeued


def _claim(queue: Queue, job: Job, entry: str) -> bool:
    """Move `job` from the started registry to the front of `queue` in one transaction,
    unless its hash changed meanwhile (it finished, or another worker claimed it)."""
    registry_key = queue.started_job_registry.key
    with queue.connection.pipeline() as pipe:
        try:
            pipe.watch(job.key)
            status = pipe.hget(job.key, "status")
            if status is None or status.decode() != JobStatus.STARTED.value:
                return False
            if pipe.zscore(registry_key, entry) is None:
                return False
            pipe.multi()
            pipe.zrem(registry_key, entry)
            job.retries_left = (job.retries_left or 1) - 1
            job.started_at = None
            queue.enqueue_job(job, pipeline=pipe, at_front=True)
            pipe.execute()
        except WatchError:
            return False
    return True
