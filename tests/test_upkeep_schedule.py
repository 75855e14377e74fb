"""The upkeep schedule (jobs/upkeep.py): one sweep job per period however many workers
start, and one sweep trigger per repository and period however often a sweep runs."""

from __future__ import annotations

import time

from rq.job import Job
from rq.registry import ScheduledJobRegistry

from app.domain.session import Session
from app.grammar.commands import Trigger
from app.handling.upkeep_records import repos_key
from app.state import SessionStore
from jobs.queue import queue_for
from jobs.upkeep import repositories, schedule_next, sweep_job_id, sweep_now

WEEK = 7 * 24 * 3600


def test_the_next_sweep_is_scheduled_once_per_period(settings, redis_conn):
    clock = 100 * WEEK + 5

    first = schedule_next(redis_conn, settings, clock)
    again = schedule_next(redis_conn, settings, clock + 60)  # a second worker starts

    queue = queue_for(redis_conn, settings)
    registry = ScheduledJobRegistry(queue=queue)
    assert first == again == sweep_job_id(101)
    assert registry.get_job_ids() == [first]
    assert registry.get_scheduled_time(first).timestamp() == 101 * WEEK
    assert Job.fetch(first, connection=redis_conn).func_name == "jobs.upkeep.run_sweep"


def test_no_sweep_is_scheduled_when_the_interval_is_zero(settings, redis_conn):
    quiet = settings.model_copy(update={"upkeep_interval": 0})

    assert schedule_next(redis_conn, quiet) is None
    assert ScheduledJobRegistry(queue=queue_for(redis_conn, quiet)).count == 0


def test_a_sweep_queues_each_repository_once_per_period(settings, redis_conn):
    redis_conn.hset(repos_key(settings), "acme/payments", "4242")
    merged = Session(id="acme/web#3", repo="acme/web", number=3, installation_id=7)
    merged.merged_at = time.time()
    open_only = Session(id="acme/api#4", repo="acme/api", number=4, installation_id=7)
    store = SessionStore(redis_conn, settings)
    store.save(merged)
    store.save(open_only)

    assert repositories(redis_conn, settings) == {"acme/payments": 4242, "acme/web": 7}
    assert sweep_now(redis_conn, settings, 5) == 2
    assert sweep_now(redis_conn, settings, 5) == 0  # the same period: deduplicated
    queue = queue_for(redis_conn, settings)
    triggers = [Trigger.model_validate(job.kwargs["trigger"]) for job in queue.jobs]
    assert sorted((t.repo, t.installation_id) for t in triggers) == [
        ("acme/payments", 4242),
        ("acme/web", 7),
    ]
    assert {c.verb for t in triggers for c in t.commands} == {"sweep"}
    assert sweep_now(redis_conn, settings, 6) == 2  # the next period sweeps again
