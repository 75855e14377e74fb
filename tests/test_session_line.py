"""Commands wait their turn: a command that finds its session held by another run joins the
session's line and runs, once, when that run lets go, however long it took; several wait
in the order they came. Driven by a real `idp-copilot worker --burst`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from rq.job import Job, JobStatus

from app.audit import AuditLog
from app.config import Settings
from app.domain.service import ServiceRequest
from app.domain.session import session_id_for
from app.grammar.commands import Command, Trigger
from app.session_line import (
    SessionLine,
    SessionQueued,
    Waiter,
    continuation_id,
    drain_stranded,
)
from app.state import SessionStore
from jobs.queue import enqueue_trigger, job_id_for, queue_for
from jobs.tasks import run_parsed
from tests.processes import local_worker_env

REPO, NUMBER = "acme/web", 4
SESSION = session_id_for(REPO, NUMBER)
ROOT = Path(__file__).resolve().parent.parent


def _trigger(delivery: str, command: Command, sender: str = "alice") -> Trigger:
    return Trigger(
        delivery_id=delivery,
        event="issue_comment",
        repo=REPO,
        number=NUMBER,
        sender=sender,
        commands=[command],
    )


CREATE = Command(verb="create-service", service=ServiceRequest(name="web-api", language="go"))


def burst(settings: Settings, tmp_path: Path) -> None:
    """A real worker on the test's queue and LocalForge, until the queue is empty."""
    env = local_worker_env(settings, str(tmp_path), IDP_METRICS_PORT="0")
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--burst"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _job(redis_conn, job_id: str) -> Job:
    return Job.fetch(job_id, connection=redis_conn)


def test_two_commands_behind_a_long_run_both_run_in_order_once_it_ends(
    settings, redis_conn, tmp_path
):
    store = SessionStore(redis_conn, settings)
    line = SessionLine(redis_conn, settings)
    asyncio.run(run_parsed(_trigger("d-create", CREATE), settings, redis_conn))
    assert store.get(SESSION).status == "waiting"
    first, second = "d-plan-alice", "d-plan-mia"
    audit = AuditLog(redis_conn, settings)
    entries_before = len(list(audit.entries()))
    with store.lock(SESSION):  # a long run holds the session
        enqueue_trigger(redis_conn, settings, _trigger(first, Command(verb="plan")))
        enqueue_trigger(redis_conn, settings, _trigger(second, Command(verb="plan"), "mia"))
        burst(settings, tmp_path)

        # Neither ran nor failed: each handed the session's line a continuation, in order.
        waiting = [continuation_id(job_id_for(d)) for d in (first, second)]
        assert line.waiting(SESSION) == waiting
        for delivery, cont in zip((first, second), waiting, strict=True):
            job = _job(redis_conn, job_id_for(delivery))
            assert job.get_status() == JobStatus.FINISHED
            assert job.return_value() == {"deferred": cont}
        assert _job(redis_conn, waiting[0]).get_status() == JobStatus.DEFERRED
        assert queue_for(redis_conn, settings).count == 0
        assert len(list(audit.entries())) == entries_before  # nothing done meanwhile

    # The long run let go: the first in line holds the session, reserved, and is queued.
    assert redis_conn.get(settings.key("lock", SESSION)) == f"handover:{waiting[0]}".encode()
    assert queue_for(redis_conn, settings).get_job_ids() == [waiting[0]]
    burst(settings, tmp_path)

    assert _job(redis_conn, waiting[0]).return_value() == {"plan": "waiting"}
    assert _job(redis_conn, waiting[1]).return_value() == {"plan": "waiting"}
    runs = [e["actor"] for e in list(audit.entries())[entries_before:]]
    assert runs and runs == sorted(runs), runs  # every write of alice's plan, then mia's
    assert set(runs) == {"alice", "mia"}
    # The line is gone and the session is free.
    assert line.waiting(SESSION) == []
    assert not redis_conn.exists(settings.key("lock", SESSION))
    assert not redis_conn.exists(settings.key("lock-lines"))


def test_a_job_run_twice_joins_the_line_once(settings, redis_conn):
    line = SessionLine(redis_conn, settings)
    store = SessionStore(redis_conn, settings)
    waiter = Waiter("job-1", continuation_id("job-1"), {"status": "deferred", "origin": "q"})
    with store.lock(SESSION):
        for _ in range(2):  # the job crashed after joining, and RQ ran it again
            queued = SessionStore(
                redis_conn, settings, SessionLine(redis_conn, settings, lambda: waiter)
            )
            try:
                with queued.lock(SESSION):
                    raise AssertionError("the session was held")
            except SessionQueued as exc:
                assert exc.continuation_id == "job-1-w1"

    assert line.waiting(SESSION) == []  # handed over at release
    assert queue_for(redis_conn, settings).get_job_ids() == ["job-1-w1"]


def test_a_dead_holders_session_goes_to_the_next_in_line_at_maintenance(settings, redis_conn):
    line = SessionLine(redis_conn, settings)
    waiter = Waiter("job-9", "job-9-w1", {"status": "deferred", "origin": "q"})
    redis_conn.set(settings.key("lock", SESSION), "token-of-a-dead-worker", px=60_000)
    queued = SessionStore(redis_conn, settings, SessionLine(redis_conn, settings, lambda: waiter))
    try:
        with queued.lock(SESSION):
            raise AssertionError("the session was held")
    except SessionQueued:
        pass
    assert drain_stranded(redis_conn, settings) == 0  # the holder's lock is still there

    redis_conn.delete(settings.key("lock", SESSION))  # its TTL ran out: nobody released it
    assert drain_stranded(redis_conn, settings) == 1

    assert queue_for(redis_conn, settings).get_job_ids() == ["job-9-w1"]
    assert line.waiting(SESSION) == []


def test_a_job_that_joined_the_line_and_runs_again_leaves_the_commands_to_its_continuation(
    settings, redis_conn, monkeypatch
):
    """Its worker died after the job joined the line; RQ runs it again (jobs/recovery.py)
    after the continuation already ran: the commands are not run a second time."""
    import jobs.tasks

    monkeypatch.setattr(jobs.tasks, "_current_job_id", lambda: "delivery-abc")
    redis_conn.hset(Job.key_for("delivery-abc-w1"), mapping={"status": "finished"})

    outcome = asyncio.run(run_parsed(_trigger("d-again", CREATE), settings, redis_conn))

    assert outcome == {"deferred": "delivery-abc-w1"}
    assert SessionStore(redis_conn, settings).get(SESSION) is None  # nothing ran
