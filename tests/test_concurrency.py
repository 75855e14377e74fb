"""One running agent per session: two commands for one issue on two real workers run one
after the other (the audit log shows it), a double-posted command yields one pull request,
and the lock of a dead process frees itself while a live holder keeps it."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from rq.job import Job, JobStatus

from app.audit import AuditLog
from app.domain.todo import marker
from app.session_line import SessionLine
from app.state import SessionStore
from jobs.queue import job_id_for
from tests import payloads
from tests.conftest import TEST_REDIS_URL
from tests.job_world import World
from tests.processes import (
    REQUEST,
    ROOT,
    WorkerProcess,
    app_environment,
    deliver_comment,
    settings_of,
    wait_for,
)

SESSION = f"{payloads.REPO}#7"


@pytest.fixture
def env(standin, tmp_path) -> dict[str, str]:
    return app_environment(TEST_REDIS_URL, standin.url, tmp_path)


@pytest.fixture
def two_workers(env, redis_conn, tmp_path):
    """Two `idp-copilot worker` processes on the same queue, both listening."""
    workers = [
        WorkerProcess(env, f"w{i}-{uuid.uuid4().hex[:6]}", tmp_path / f"worker{i}.log")
        for i in (1, 2)
    ]
    try:
        for worker in workers:
            worker.wait_registered(redis_conn, settings_of(env))
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def _ended(connection, job_id: str, workers) -> Job:
    job = Job.fetch(job_id, connection=connection)
    ended = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
    wait_for(
        lambda: job.get_status(refresh=True) in ended,
        60,
        what=f"job {job.id}:\n" + "\n".join(w.tail(2000) for w in workers),
    )
    return job


def _finished(connection, delivery: str, workers) -> Job:
    """The job of `delivery` once it ended, or, when it found the session busy and joined
    its line, the continuation that ran its commands."""
    job = _ended(connection, job_id_for(delivery), workers)
    while job.get_status() == JobStatus.FINISHED and "deferred" in (job.return_value() or {}):
        job = _ended(connection, job.return_value()["deferred"], workers)
    logs = "\n".join(w.tail(2000) for w in workers)
    assert job.get_status() == JobStatus.FINISHED, logs
    return job


def _todo_comments(github) -> list[dict]:
    return [c for c in github.comments.values() if marker(SESSION) in c["body"]]


@pytest.mark.slow  # two real worker processes
def test_two_commands_for_one_issue_on_two_workers_run_one_after_the_other(
    standin, env, redis_conn, two_workers
):
    """The first run is paused while GitHub opens its pull request, holding the session; the
    second command arrives then and joins the session's line instead of running (or failing
    after a few retries): it runs once the first run is over, however long that took."""
    settings = settings_of(env)
    hold = standin.hold("POST", r"/pulls$")
    first = deliver_comment(redis_conn, settings, REQUEST, sender="alice")
    assert hold.reached.wait(60), "\n".join(w.tail() for w in two_workers)
    github = standin.github
    writes_before = len(github.writes())
    second = deliver_comment(redis_conn, settings, "/idp plan", sender="mia")
    second_job = _ended(redis_conn, job_id_for(second), two_workers)
    waiting = second_job.return_value()["deferred"]
    assert SessionLine(redis_conn, settings).waiting(SESSION) == [waiting]
    during = github.writes()[writes_before:]
    hold.release()

    # While the first run held the session, the second at most acknowledged its comment (the
    # first run's check run goes out alongside its held pull request, so it may land here).
    second_writes = [(m, p) for m, p in during if not p.endswith("/check-runs")]
    assert all(path.endswith("/reactions") for _, path in second_writes), during

    assert _finished(redis_conn, first, two_workers).return_value() == {"create-service": "waiting"}
    assert _finished(redis_conn, second, two_workers).return_value() == {"plan": "waiting"}

    assert len(_todo_comments(github)) == 1 and len(github.pulls) == 1
    # The audit log (Redis-stamped, in order): every side effect of the first run comes
    # before any of the second run's, which edited the same todo comment and pull request.
    runs = [(e["actor"], e["command"]) for e in AuditLog(redis_conn, settings).entries()]
    assert ("mia", "plan") in runs
    assert runs == sorted(runs, key=lambda run: run[0] == "mia"), runs
    assert standin.unmatched == []


@pytest.mark.slow  # two real worker processes
def test_a_double_posted_command_on_two_workers_yields_one_pull_request(
    standin, env, redis_conn, two_workers
):
    settings = settings_of(env)
    deliveries = [deliver_comment(redis_conn, settings, REQUEST) for _ in range(2)]

    for delivery in deliveries:
        assert _finished(redis_conn, delivery, two_workers).return_value() == {
            "create-service": "waiting"
        }

    github = standin.github
    assert len(github.pulls) == 1 and len(_todo_comments(github)) == 1
    writes = github.writes()
    assert sum(1 for m, p in writes if m == "POST" and p.endswith("/pulls")) == 1
    assert sum(1 for m, p in writes if m == "POST" and p.endswith("/git/commits")) == 1
    assert sum(1 for m, p in writes if m == "POST" and p.endswith("/issues/7/comments")) == 1
    session = SessionStore(redis_conn, settings).get(SESSION)
    assert session is not None and session.pr_number == next(iter(github.pulls))


HOLDER = """
import sys, time
from app.config import Settings
from app.state import SessionStore, connect
settings = Settings(redis_url=sys.argv[1], redis_prefix=sys.argv[2], lock_ttl=2)
store = SessionStore(connect(settings), settings)
with store.lock(sys.argv[3]):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_dead_processs_session_lock_expires_and_the_next_run_proceeds(
    settings, redis_conn, no_unmocked_http, monkeypatch
):
    """A process holds the session with a 2 s lock and is SIGKILLed: while it lived the
    lock outlived its TTL (renewed), after its death the TTL frees it for the next run."""
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch)
    key = settings.key("lock", SESSION)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, settings.redis_url, settings.redis_prefix, SESSION],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        token = redis_conn.get(key)
        assert token is not None
        # Renewed while the holder lives: the TTL climbs back up four times (past 2 s, the
        # lock's TTL), and the token stays the holder's throughout.
        seen = {"ttl": redis_conn.pttl(key), "renewals": 0}

        def renewed_four_times() -> bool:
            assert redis_conn.get(key) == token
            ttl = redis_conn.pttl(key)
            seen["renewals"] += ttl > seen["ttl"]
            seen["ttl"] = ttl
            return seen["renewals"] >= 4

        wait_for(renewed_four_times, timeout=30, every=0.05, what="the holder renewing its lock")
    finally:
        holder.kill()
        holder.wait()

    assert world.comment(REQUEST) == {"create-service": "waiting"}

    assert len(world.github.pulls) == 1 and world.session.pr_number == world.pr_number()
    assert not redis_conn.exists(key)


@pytest.mark.slow  # two real worker processes
def test_cancel_stops_the_run_a_worker_is_in_and_drops_the_command_waiting_behind_it(
    standin, env, redis_conn, two_workers
):
    """The first run is paused while GitHub opens its pull request; `/idp plan` joins the
    session's line behind it; `/idp cancel` (which waits for nothing) runs on the other
    worker: it stops the run (RQ's stop-job command) and drops the plan waiting in line."""
    settings = settings_of(env)
    hold = standin.hold("POST", r"/pulls$")
    first = deliver_comment(redis_conn, settings, REQUEST, sender="alice")
    assert hold.reached.wait(60), "\n".join(w.tail() for w in two_workers)
    plan = deliver_comment(redis_conn, settings, "/idp plan", sender="mia")
    waiting = _ended(redis_conn, job_id_for(plan), two_workers).return_value()["deferred"]

    cancel = deliver_comment(redis_conn, settings, "/idp cancel", sender="mia")
    outcome = _finished(redis_conn, cancel, two_workers).return_value()
    hold.release()

    assert outcome == {"cancel": "cancelled"}
    assert _ended(redis_conn, job_id_for(first), two_workers).get_status() == JobStatus.STOPPED
    assert Job.fetch(waiting, connection=redis_conn).get_status() == JobStatus.CANCELED
    session = SessionStore(redis_conn, settings).get(SESSION)
    assert session is not None and session.status == "cancelled"
    assert not redis_conn.exists(settings.key("lock", SESSION))  # freed for the next command
    assert SessionLine(redis_conn, settings).waiting(SESSION) == []
