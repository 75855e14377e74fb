"""Lose nothing, do nothing twice: a worker SIGKILLed mid-run is recovered by another worker
and the workflow finishes exactly once; jobs of silent workers go back on the queue; a
failed job is retried after its `Retry` interval; the receiver answers 503 while Redis is
unreachable and queues again once it is back."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid

import pytest
import redis as redis_lib
from rq import Queue, Retry, Worker
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.utils import now as utc_now
from starlette.testclient import TestClient

from app.domain.todo import marker
from app.state import SessionStore
from app.web import WEBHOOK_PATH, create_app
from jobs.queue import job_id_for, queue_for, retry_policy
from jobs.recovery import requeue_abandoned
from jobs.worker import ABANDONED_AFTER, RECOVERY_INTERVAL, ObservedWorker, build_worker
from tests import payloads
from tests.conftest import TEST_REDIS_URL, WEBHOOK_SECRET
from tests.processes import (
    WorkerProcess,
    app_environment,
    free_port,
    kill_mid_run_and_recover,
    settings_of,
    wait_for,
)

SESSION = f"{payloads.REPO}#7"


def _posts(github, suffix: str) -> int:
    return sum(1 for m, p in github.writes() if m == "POST" and p.endswith(suffix))


# -- a worker killed mid-run ---------------------------------------------------------------


@pytest.mark.slow  # real worker processes; waits for the dead worker's heartbeat limit (8 s)
def test_a_worker_killed_mid_run_is_recovered_and_the_workflow_finishes_exactly_once(
    standin, redis_conn, tmp_path
):
    """SIGKILL to the worker, its horse and its scheduler while GitHub is opening the pull
    request (GitHub opens it anyway); a new worker finishes the job: one todo comment, one
    branch, one commit, one pull request."""
    env = app_environment(TEST_REDIS_URL, standin.url, tmp_path)

    recovery = kill_mid_run_and_recover(env, redis_conn, standin, tmp_path, timeout=75)

    print(f"recovered {recovery.seconds:.1f} s after SIGKILL")
    recovery.job.refresh()
    assert recovery.job.get_status() == JobStatus.FINISHED
    assert recovery.job.retries_left == 2  # the crash counted as one of the job's retries
    github = standin.github
    (pr_number, pull), *more = github.pulls.items()
    assert more == [] and pull["title"] == "Add service payments-api"
    assert _posts(github, "/pulls") == 1  # the new run found the pull request GitHub opened
    assert _posts(github, "/git/refs") == 1 and set(github.refs) == {"main", pull["branch"]}
    assert _posts(github, "/git/commits") == 1
    assert github.commits[github.refs[pull["branch"]]]["parents"] == [github.refs["main"]]
    todo = [c for c in github.comments.values() if marker(SESSION) in c["body"]]
    assert len(todo) == 1 and _posts(github, "/issues/7/comments") == 1
    session = SessionStore(redis_conn, settings_of(env)).get(SESSION)
    assert session is not None and session.pr_number == pr_number
    # Everything ran but the steps that wait for `/idp apply`, and the comment says so.
    assert session.status == "waiting"
    assert {t.status for t in session.todo.tasks} == {"done", "waiting_approval"}
    assert todo[0]["body"] == session.rendered_todo and f"#{pr_number}" in todo[0]["body"]
    assert standin.unmatched == []


# -- jobs of silent workers ------------------------------------------------------------------


def _started_by_a_worker_that_dies(queue: Queue, retries: int = 3) -> Job:
    """A job as a worker leaves it when it is killed mid-run: STARTED, in the started
    registry, with an execution whose heartbeat nobody renews."""
    job = queue.enqueue("jobs.tasks.run_trigger", kwargs={"trigger": {}}, retry=Retry(retries))
    worker = Worker([queue], connection=queue.connection, name=f"doomed-{uuid.uuid4().hex[:6]}")
    worker.register_birth()
    dequeued, _ = worker.dequeue_job_and_maintain_ttl(timeout=1)
    assert dequeued.id == job.id
    worker.prepare_execution(dequeued)
    worker.prepare_job_execution(dequeued)
    return dequeued


def test_a_job_whose_worker_went_silent_goes_back_to_the_front_of_the_queue(redis_conn):
    queue = Queue(f"q{uuid.uuid4().hex[:6]}", connection=redis_conn)
    job = _started_by_a_worker_that_dies(queue)
    waiting = queue.enqueue("jobs.tasks.run_trigger", kwargs={"trigger": {}})

    assert requeue_abandoned(queue, stale_after=30) == []  # heartbeat still fresh
    later = time.time() + 31
    assert requeue_abandoned(queue, stale_after=30, now=later) == [job.id]

    job.refresh()
    assert job.get_status() == JobStatus.QUEUED and job.retries_left == 2
    assert queue.job_ids == [job.id, waiting.id]
    assert queue.started_job_registry.get_job_ids(cleanup=False) == []
    # Another worker's maintenance right after finds nothing left to do.
    assert requeue_abandoned(queue, stale_after=30, now=later) == []
    assert queue.job_ids == [job.id, waiting.id]


def test_a_job_out_of_retries_is_left_for_rq_to_record_as_failed(redis_conn):
    queue = Queue(f"q{uuid.uuid4().hex[:6]}", connection=redis_conn)
    job = _started_by_a_worker_that_dies(queue, retries=1)
    job.retries_left = 0
    job.save()

    assert requeue_abandoned(queue, stale_after=30, now=time.time() + 31) == []

    assert queue.job_ids == []
    assert queue.started_job_registry.get_job_ids(cleanup=False) == [job.id]


def _silenced(queue: Queue, job: Job) -> None:
    """Date the heartbeat of `job`'s execution back past the limit, as if its worker had
    stopped beating ABANDONED_AFTER + 1 s ago."""
    ((job_id, execution_id),) = queue.started_job_registry.get_job_and_execution_ids(cleanup=False)
    assert job_id == job.id
    execution = Execution.fetch(execution_id, job_id, queue.connection)
    stale = time.time() - ABANDONED_AFTER - 1
    queue.connection.hset(execution.key, "last_heartbeat", stale)


def test_every_maintenance_wake_up_runs_the_recovery_pass_and_rq_cleans_up_less_often(
    redis_conn, monkeypatch
):
    """What bounds recovery: an idle worker's dequeue returns every RECOVERY_INTERVAL, each
    return runs the recovery pass (a job silent for ABANDONED_AFTER goes back on the queue),
    while RQ's heavier maintenance keeps its own, longer cadence."""
    queue = Queue(f"q{uuid.uuid4().hex[:6]}", connection=redis_conn)
    worker = ObservedWorker([queue], connection=redis_conn, maintenance_interval=RECOVERY_INTERVAL)
    cleaned: list[str] = []

    def rq_maintenance(self: Worker) -> None:  # what RQ's does to the worker: it stamps the time
        cleaned.append(self.name)
        self.last_cleaned_at = utc_now()

    monkeypatch.setattr(Worker, "run_maintenance_tasks", rq_maintenance)
    assert worker.dequeue_timeout == RECOVERY_INTERVAL and worker.should_run_maintenance_tasks

    first = _started_by_a_worker_that_dies(queue)
    _silenced(queue, first)
    worker.run_maintenance_tasks()
    assert queue.job_ids == [first.id] and cleaned.count(worker.name) == 1
    assert not worker.should_run_maintenance_tasks  # the next pass waits for the next wake-up

    queue.empty()
    second = _started_by_a_worker_that_dies(queue)
    worker.run_maintenance_tasks()  # its heartbeat is fresh: a live worker's job stays
    assert queue.job_ids == []
    _silenced(queue, second)
    worker.run_maintenance_tasks()
    assert queue.job_ids == [second.id]
    assert cleaned.count(worker.name) == 1  # RQ's own maintenance: once, not at every pass


def test_a_live_worker_beats_several_times_within_the_limit(redis_conn, tmp_path):
    """A slow job is not taken for a dead one: the worker that runs it renews its heartbeat
    every job_monitoring_interval, at least three times within ABANDONED_AFTER, and its
    pass over the queue comes sooner than the limit."""
    settings = settings_of(app_environment(TEST_REDIS_URL, "http://127.0.0.1:9", tmp_path))
    worker = build_worker(settings, name=f"w{uuid.uuid4().hex[:6]}")
    assert worker.job_monitoring_interval * 3 <= ABANDONED_AFTER
    assert worker.maintenance_interval == RECOVERY_INTERVAL < ABANDONED_AFTER


def fails_on_the_first_try(key: str) -> str:
    """A job (run by a worker process) that fails once, then succeeds."""
    from rq import get_current_job

    connection = get_current_job().connection
    if connection.incr(key) == 1:
        raise RuntimeError("first try fails")
    return "second try"


@pytest.mark.slow  # a real worker process; the job's first retry interval is 5 s
def test_a_failed_job_is_retried_after_its_interval_by_a_running_worker(
    standin, redis_conn, tmp_path
):
    """The job's `Retry` schedules the second try; the worker's scheduler queues it."""
    env = app_environment(TEST_REDIS_URL, standin.url, tmp_path)
    settings = settings_of(env)
    queue = queue_for(redis_conn, settings)
    key = f"tries-{uuid.uuid4().hex}"
    job = queue.enqueue(fails_on_the_first_try, key, retry=retry_policy())
    worker = WorkerProcess(env, f"w-{uuid.uuid4().hex[:6]}", tmp_path / "worker.log")
    try:
        wait_for(
            lambda: job.get_status(refresh=True) == JobStatus.FINISHED,
            45,
            what=f"the retry to run; the worker's log:\n{worker.tail()}",
        )
    finally:
        worker.stop()
    assert job.return_value() == "second try"
    assert int(redis_conn.get(key)) == 2


# -- Redis unreachable for a while -------------------------------------------------------------


class TcpRelay:
    """A TCP relay on loopback in front of Redis that can be cut and restored, so Redis
    becomes unreachable for a process that keeps its address."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Close the listener and every relayed connection: Redis is gone."""
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would not (Linux)
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _deliver(client: TestClient, delivery: str):
    body = payloads.encode(payloads.issue_comment("/idp plan", sender="alice"))
    headers = payloads.headers("issue_comment", body, WEBHOOK_SECRET, delivery_id=delivery)
    return client.post(WEBHOOK_PATH, content=body, headers=headers)


def test_the_receiver_answers_503_while_redis_is_unreachable_and_queues_again_after(
    settings, redis_conn
):
    url = redis_lib.Redis.from_url(TEST_REDIS_URL).connection_pool.connection_kwargs
    relay = TcpRelay((url["host"], url["port"]))
    relay.start()
    db = url.get("db", 0)
    relayed = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{relay.port}/{db}"})
    queue = queue_for(redis_conn, settings)
    try:
        with TestClient(create_app(relayed)) as client:
            assert _deliver(client, "before").json()["status"] == "queued"

            relay.cut()
            during = _deliver(client, "during")
            assert during.status_code == 503
            assert during.json()["status"] == "unavailable"
            assert client.get("/readyz").status_code == 503

            relay.start()
            assert client.get("/readyz").status_code == 200
            # GitHub's redelivery of the failed delivery: nothing of it was kept, so it queues.
            redelivered = _deliver(client, "during")
            assert redelivered.status_code == 202
            assert redelivered.json()["status"] == "queued"
            assert _deliver(client, "during").json()["status"] == "duplicate"
    finally:
        relay.cut()
    assert queue.job_ids == [job_id_for("before"), job_id_for("during")]
