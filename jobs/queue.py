"""Queue names and the enqueue helper the webhook receiver uses.

Dedupe and enqueue are one Redis round trip: a Lua script sets the delivery key (SET NX EX)
and, only when that succeeds, writes the RQ job hash and pushes its id, exactly as
`Queue.enqueue_job` would. The delivery key lives for days (GitHub redelivers hours later),
much longer than the job; RQ's own `unique=True` guards only while the job exists.
"""

from __future__ import annotations

import hashlib
from weakref import WeakKeyDictionary

import redis
from opentelemetry.trace import SpanKind
from redis.commands.core import Script
from rq import Queue, Retry
from rq.job import JobStatus
from rq.utils import now

from app.commands import Trigger
from app.config import Settings
from app.tracing import inject_context, tracer

JOB_FUNC = "jobs.tasks.run_trigger"
_SCRIPTS: WeakKeyDictionary[redis.Redis, Script] = WeakKeyDictionary()

# KEYS: delivery key, job hash, queue list, rq:queues set
# ARGV: delivery ttl, job id, queue key, then job hash field/value pairs
_DEDUPE_ENQUEUE = """
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[3])
return 1
"""


def _script(connection: redis.Redis) -> Script:
    script = _SCRIPTS.get(connection)
    if script is None:
        script = _SCRIPTS[connection] = connection.register_script(_DEDUPE_ENQUEUE)
    return script


def preload(connection: redis.Redis) -> None:
    """Load the enqueue script into Redis so even the first delivery is one round trip
    (EVALSHA of an unknown script costs a NOSCRIPT reply and a SCRIPT LOAD first)."""
    connection.script_load(_DEDUPE_ENQUEUE)


def job_id_for(delivery_id: str) -> str:
    """A job id that derives from the delivery id (hashed: delivery ids are user input)."""
    return "delivery-" + hashlib.sha256(delivery_id.encode()).hexdigest()[:32]


def queue_for(connection: redis.Redis, settings: Settings) -> Queue:
    return Queue(settings.queue_name, connection=connection, default_timeout=settings.job_timeout)


def retry_policy() -> Retry:
    """A crashed or failed run is tried again (the session resumes after its last step)."""
    return Retry(max=3, interval=[5, 30, 120])


def enqueue_trigger(connection: redis.Redis, settings: Settings, trigger: Trigger) -> bool:
    """Queue a job for `trigger` unless its delivery was seen. True when queued.

    Raises redis errors unchanged: the receiver answers 503 so GitHub marks the delivery
    failed and an operator can redeliver it. The job's meta carries the current trace
    (`meta["otel"]`), so the worker's spans join the receiver's trace.
    """
    queue = queue_for(connection, settings)
    job_id = job_id_for(trigger.delivery_id)
    attributes = {
        "messaging.system": "rq",
        "messaging.destination.name": queue.name,
        "messaging.message.id": job_id,
    }
    with tracer().start_as_current_span("enqueue", kind=SpanKind.PRODUCER, attributes=attributes):
        return _enqueue(connection, settings, trigger, queue, job_id)


def _enqueue(
    connection: redis.Redis, settings: Settings, trigger: Trigger, queue: Queue, job_id: str
) -> bool:
    job = queue.create_job(
        JOB_FUNC,
        kwargs={"trigger": trigger.model_dump(mode="json")},
        job_id=job_id,
        timeout=settings.job_timeout,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"{trigger.event} {trigger.repo}#{trigger.number}",
        retry=retry_policy(),
        meta={"otel": inject_context()},
    )
    # What Queue._prepare_for_queue sets, without its INFO round trip for the server version.
    job.origin = queue.name
    job.enqueued_at = now()
    job._status = JobStatus.QUEUED
    fields: list[bytes | str] = []
    for key, value in job.to_dict().items():
        if value is None:
            continue
        fields.append(key)
        fields.append(value if isinstance(value, bytes | str) else str(value))
    queued = _script(connection)(
        keys=[
            settings.key("delivery", trigger.delivery_id),
            job.key,
            queue.key,
            Queue.redis_queues_keys,
        ],
        args=[settings.dedupe_ttl, job.id, queue.key, *fields],
    )
    return bool(queued)
