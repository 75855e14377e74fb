"""How bench/workflow.py queues its workflows, as the receiver queues deliveries: all at once
(a burst, before the workers start), or one at a time to running workers, each once the last
one ended (what one user waits for, without the queue in front)."""

from __future__ import annotations

import argparse
import threading
import time
import uuid

import redis
from rq import Worker
from rq.job import Job, JobStatus

from app.config import Settings
from app.grammar.commands import Trigger
from app.webhooks import route
from bench.wrk import BenchError
from jobs.queue import enqueue_trigger, job_id_for, preload
from tests import payloads

REQUEST = "/idp create-service svc-{k} --lang python"


def enqueue_one(connection: redis.Redis, settings: Settings, k: int) -> str:
    """Queue the create-service command of issue #k as the receiver would; its job id."""
    payload = payloads.issue_comment(REQUEST.format(k=k), sender="alice", number=k)
    delivery = f"bench-{uuid.uuid4()}"
    trigger = route("issue_comment", delivery, payload)
    if not isinstance(trigger, Trigger):
        raise BenchError(f"the receiver would not queue workflow {k}: {trigger}")
    if not enqueue_trigger(connection, settings, trigger):
        raise BenchError(f"workflow {k} was not queued (delivery {delivery} seen before)")
    return job_id_for(delivery)


def enqueue_burst(
    connection: redis.Redis, settings: Settings, count: int, queued_at: dict[int, float]
) -> dict[str, int]:
    """Queue `count` create-service commands, one per issue; job id → issue number."""
    preload(connection)
    jobs = {}
    for k in range(1, count + 1):
        queued_at[k] = time.time()
        jobs[enqueue_one(connection, settings, k)] = k
    return jobs


ENDED = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


class OneAtATime(threading.Thread):
    """Queues workflow 1 once `workers` workers are listening, each next one when the last
    ended, then sets `stop`; `jobs` and `queued_at` fill as it goes."""

    def __init__(self, redis_url: str, settings: Settings, args: argparse.Namespace, workers):
        super().__init__(daemon=True)
        self.connection = redis.Redis.from_url(redis_url)
        self.settings, self.count, self.workers = settings, args.workflows, workers
        self.deadline = time.monotonic() + args.timeout
        self.jobs: dict[str, int] = {}
        self.queued_at: dict[int, float] = {}
        self.stop = threading.Event()
        self.problem: str | None = None

    def _wait(self, ready, what: str) -> None:
        while not ready():
            if time.monotonic() > self.deadline:
                raise BenchError(f"timed out waiting for {what}")
            time.sleep(0.01)

    def run(self) -> None:
        try:
            preload(self.connection)
            self._wait(lambda: Worker.count(connection=self.connection) >= self.workers, "workers")
            for k in range(1, self.count + 1):
                self.queued_at[k] = time.time()
                job = Job(enqueue_one(self.connection, self.settings, k), self.connection)
                self.jobs[job.id] = k
                self._wait(lambda job=job: job.get_status() in ENDED, f"workflow {k}")
        except (BenchError, redis.RedisError) as exc:
            self.problem = str(exc)
        finally:
            self.stop.set()
