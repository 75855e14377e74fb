"""Queue names and the enqueue helpers the webhook receiver and the operator API use.

Dedupe and enqueue are one Redis round trip: a Lua script sets the delivery key (SET NX EX)
and, only when that succeeds, writes the RQ job hash and pushes its id, exactly as
`Queue.enqueue_job` would. The delivery key lives for days (GitHub redelivers hours later),
much longer than the job; RQ's own `unique=True` guards only while the job exists.

The job hash is built here field by field, as RQ's `Job.to_dict` would for the same job:
building RQ's `Job` and `Queue` objects per delivery cost twice as much (bench/RESULTS.md).
tests/test_web.py checks that the hash equals what RQ would store.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any, Protocol
from weakref import WeakKeyDictionary

import redis
from opentelemetry.trace import SpanKind
from redis.commands.core import Script
from redis.exceptions import NoScriptError
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.serializers import DefaultSerializer
from rq.utils import now, utcformat

from app.config import Settings
from app.grammar.commands import Trigger
from app.tracing import inject_context, tracer

JOB_FUNC = "jobs.tasks.run_trigger"
RESULT_TTL = 24 * 3600
FAILURE_TTL = 7 * 24 * 3600
RETRY_MAX = 3
RETRY_INTERVALS = [5, 30, 120]
_RETRY_INTERVALS_JSON = json.dumps(RETRY_INTERVALS)  # as RQ stores it
_SCRIPTS: WeakKeyDictionary[redis.Redis, Script] = WeakKeyDictionary()
QUEUED, SEEN_DELIVERY, SEEN_BODY = 1, 0, 2

# KEYS: delivery key, job hash, queue list, rq:queues set, and the signed body's key when
# there is a signed body (a webhook; the operator API has none)
# ARGV: delivery ttl, job id, queue key, then job hash field/value pairs
# Returns 1 when queued, 0 for a delivery id seen before, 2 for a body seen before (a
# captured delivery replayed under a new id).
_DEDUPE_ENQUEUE = """
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[1]) then
  return 0
end
if KEYS[5] and not redis.call('SET', KEYS[5], ARGV[2], 'NX', 'EX', ARGV[1]) then
  return 2
end
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[3])
return 1
"""
_DEDUPE_ENQUEUE_SHA = hashlib.sha1(_DEDUPE_ENQUEUE.encode()).hexdigest()  # noqa: S324 (Redis's)
# The fields RQ writes empty for a job that has not run yet and has no callbacks.
_EMPTY_FIELDS = (
    "success_callback_name",
    "failure_callback_name",
    "stopped_callback_name",
    "started_at",
    "ended_at",
    "last_heartbeat",
    "worker_name",
    "group_id",
)


class AsyncRedis(Protocol):
    """What the asyncio enqueue needs of a client: redis-py's `redis.asyncio.Redis` and
    `jobs.pipelined_redis.PipelinedRedis` both have it."""

    async def execute_command(self, *args: Any) -> Any: ...

    async def aclose(self) -> None: ...


def _script(connection: redis.Redis) -> Script:
    script = _SCRIPTS.get(connection)
    if script is None:
        script = _SCRIPTS[connection] = connection.register_script(_DEDUPE_ENQUEUE)
    return script


def preload(connection: redis.Redis) -> None:
    """Load the enqueue script into Redis so even the first delivery is one round trip
    (EVALSHA of an unknown script costs a NOSCRIPT reply and a SCRIPT LOAD first)."""
    connection.script_load(_DEDUPE_ENQUEUE)


async def preload_async(connection: AsyncRedis) -> None:
    """`preload` on the receiver's asyncio client, which also opens its connection: the
    first delivery then costs one round trip like every other."""
    await connection.execute_command("SCRIPT", "LOAD", _DEDUPE_ENQUEUE)


def job_id_for(delivery_id: str) -> str:
    """A job id that derives from the delivery id (hashed: delivery ids are user input)."""
    return "delivery-" + hashlib.sha256(delivery_id.encode()).hexdigest()[:32]


def queue_for(connection: redis.Redis, settings: Settings) -> Queue:
    return Queue(settings.queue_name, connection=connection, default_timeout=settings.job_timeout)


def retry_policy() -> Retry:
    """A crashed or failed run is tried again (the session resumes after its last step)."""
    return Retry(max=RETRY_MAX, interval=RETRY_INTERVALS)


def job_description(trigger: Trigger) -> str:
    """What `rq info` and the RQ dashboard show for the trigger's job."""
    return f"{trigger.event} {trigger.repo}#{trigger.number}"


def job_hash(settings: Settings, trigger: Trigger, carrier: dict[str, str]) -> dict[str, object]:
    """The RQ job hash of `trigger`'s job, queued now: what `Queue.enqueue_job` would store
    for `queue.create_job(JOB_FUNC, kwargs={"trigger": ...}, ...)` with our timeouts, TTLs,
    retry policy and `meta={"otel": carrier}`."""
    stamp = utcformat(now())
    payload = (JOB_FUNC, None, (), {"trigger": trigger.model_dump(mode="json")})
    fields: dict[str, object] = {
        "created_at": stamp,
        "data": zlib.compress(DefaultSerializer.dumps(payload)),
        **dict.fromkeys(_EMPTY_FIELDS, ""),
        "retries_left": RETRY_MAX,
        "retry_intervals": _RETRY_INTERVALS_JSON,
        "origin": settings.queue_name,
        "description": job_description(trigger),
        "enqueued_at": stamp,
        "timeout": settings.job_timeout,
        "result_ttl": RESULT_TTL,
        "failure_ttl": FAILURE_TTL,
        "status": JobStatus.QUEUED.value,
        "meta": DefaultSerializer.dumps({"otel": carrier}),
    }
    return fields


def _script_call(
    settings: Settings, trigger: Trigger, job_id: str, body_digest: str | None = None
) -> tuple[list, list]:
    """KEYS and ARGV of the dedupe-and-enqueue script for `trigger` (inside the enqueue span,
    whose context the job's meta carries)."""
    queue_key = Queue.redis_queue_namespace_prefix + settings.queue_name
    args: list[object] = [settings.dedupe_ttl, job_id, queue_key]
    for key, value in job_hash(settings, trigger, inject_context()).items():
        args.append(key)
        args.append(value)
    keys = [
        settings.key("delivery", trigger.delivery_id),
        Job.redis_job_namespace_prefix + job_id,
        queue_key,
        Queue.redis_queues_keys,
    ]
    if body_digest is not None:
        keys.append(settings.key("body", body_digest))
    return keys, args


def _enqueue_span(settings: Settings, job_id: str):
    attributes = {
        "messaging.system": "rq",
        "messaging.destination.name": settings.queue_name,
        "messaging.message.id": job_id,
    }
    return tracer().start_as_current_span("enqueue", kind=SpanKind.PRODUCER, attributes=attributes)


def enqueue_trigger(connection: redis.Redis, settings: Settings, trigger: Trigger) -> bool:
    """Queue a job for `trigger` unless its delivery was seen. True when queued.

    Raises redis errors unchanged: the receiver answers 503 so GitHub marks the delivery
    failed and an operator can redeliver it. The job's meta carries the current trace
    (`meta["otel"]`), so the worker's spans join the receiver's trace.
    """
    job_id = job_id_for(trigger.delivery_id)
    with _enqueue_span(settings, job_id):
        keys, args = _script_call(settings, trigger, job_id)
        return bool(_script(connection)(keys=keys, args=args))


async def enqueue_trigger_async(
    connection: AsyncRedis, settings: Settings, trigger: Trigger, body_digest: str | None = None
) -> int:
    """`enqueue_trigger` on an asyncio client, for the receiver's event loop: QUEUED,
    SEEN_DELIVERY, or SEEN_BODY when `body_digest` (the signed body's HMAC) was seen before
    under another delivery id. Still one round trip."""
    job_id = job_id_for(trigger.delivery_id)
    with _enqueue_span(settings, job_id):
        keys, args = _script_call(settings, trigger, job_id, body_digest)
        try:
            queued = await connection.execute_command(
                "EVALSHA", _DEDUPE_ENQUEUE_SHA, len(keys), *keys, *args
            )
        except NoScriptError:  # Redis restarted since start-up: EVAL also caches the script
            queued = await connection.execute_command(
                "EVAL", _DEDUPE_ENQUEUE, len(keys), *keys, *args
            )
        return int(queued)
