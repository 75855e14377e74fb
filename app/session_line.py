"""Commands wait their turn: the line of jobs behind a session's running run.

Every session lock (app/state.py `SessionStore.lock`) goes through here, so whoever holds
it (a worker's job, `idp-copilot run`, a test) hands the session on when it lets go. The
continuations are RQ jobs: this module writes RQ's key names (`rq:job:…`, `rq:queue:…`)
as jobs/queue.py does, and jobs/tasks.py builds the job hash.

One run holds a session at a time (its lock, app/state.py). A job that finds the session
held does not spin or fail after a few retries: in one Redis script it writes its
continuation (an RQ job hash for the commands it has not run, status `deferred`, never on
the queue yet) and joins the session's line. When the holder releases the lock, the same
script that frees it takes the first job of the line, reserves the lock for it
(`handover:<job id>`, so a newcomer cannot slip in between) and puts it on the RQ queue.
The continuation runs as long after as the holder's run takes, in arrival order, once: a
job enters the line and leaves it in one script each.

A holder that dies (SIGKILL, OOM) releases nothing: its lock expires with its TTL, and a
worker's maintenance (`drain_stranded`, every 30 s) hands the session to the next in line.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock
from rq import Queue
from rq.job import Job, JobStatus
from rq.utils import now, utcformat

from app.config import Settings

log = logging.getLogger(__name__)

HANDOVER = "handover:"
# The line outlives its last movement by a day: a wait longer than that means something is
# broken, and the continuation hashes expire with it.
LINE_TTL = 24 * 3600
# How long the lock stays reserved for a continuation put on the queue: long enough for a
# busy queue to reach it, short enough that one the queue lost frees the session.
HANDOVER_SECONDS = 600

# KEYS: lock, line, lines index, continuation job hash (absent: join no line)
# ARGV: token, lock ms, own job id, session id, now, line ttl, continuation id, hash fields…
# Returns 1 when the lock is ours, 0 when it is held (and no continuation was given), 2 when
# the continuation is in line (or already was: the job ran before and crashed after).
_ENTER = """
local held = redis.call('GET', KEYS[1])
if not held or (ARGV[3] ~= '' and held == 'handover:' .. ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if not KEYS[4] then return 0 end
if redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('HSET', KEYS[4], unpack(ARGV, 8))
  redis.call('EXPIRE', KEYS[4], ARGV[6])
  redis.call('RPUSH', KEYS[2], ARGV[7])
end
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[6])
return 2
"""

# KEYS: lock, line, lines index, queue list, rq:queues set
# ARGV: token (or '' = only when nobody holds the lock, or '*' = whoever holds it),
#       handover ms, job key prefix, session id, queue key, enqueued_at
# Returns -1 when the lock is not the caller's, 0 when freed, 1 when handed over.
_LEAVE = """
local held = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if held then return -1 end
elseif ARGV[1] ~= '*' and held ~= ARGV[1] then
  return -1
end
while true do
  local nxt = redis.call('LPOP', KEYS[2])
  if not nxt then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[3], ARGV[4])
    return 0
  end
  local job = ARGV[3] .. nxt
  if redis.call('HGET', job, 'status') == 'deferred' then
    redis.call('SET', KEYS[1], 'handover:' .. nxt, 'PX', ARGV[2])
    redis.call('HSET', job, 'status', 'queued', 'enqueued_at', ARGV[6])
    redis.call('PERSIST', job)
    redis.call('RPUSH', KEYS[4], nxt)
    redis.call('SADD', KEYS[5], ARGV[5])
    return 1
  end
end
"""


class SessionLocked(Exception):
    """Another worker is running this session right now."""


class SessionQueued(SessionLocked):
    """The session is held: this job's continuation waits in its line (`continuation_id`)."""

    def __init__(self, session_id: str, continuation_id: str) -> None:
        super().__init__(session_id)
        self.continuation_id = continuation_id


@dataclass
class Waiter:
    """What joins the line for the job asking: its own id (a continuation takes the lock
    reserved for it) and the RQ job hash of its continuation."""

    job_id: str
    continuation_id: str
    fields: dict[str, Any] = field(default_factory=dict)


def continuation_id(job_id: str) -> str:
    """The id of a job's continuation: one per job, so a job run twice joins the line once."""
    match = re.search(r"-w(\d+)$", job_id)
    if match is None:
        return f"{job_id}-w1"
    return f"{job_id[: match.start()]}-w{int(match.group(1)) + 1}"


def _line_key(settings: Settings, session_id: str) -> str:
    return settings.key("lock-line", session_id)


def _index_key(settings: Settings) -> str:
    return settings.key("lock-lines")


class SessionLine:
    """Session locks with the line behind them. `waiter` says how the caller waits: a
    function returning its `Waiter` (an RQ job joins the line), or None (not an RQ job,
    e.g. `idp-copilot run`: it blocks up to the lock's `wait`)."""

    def __init__(self, connection: redis.Redis, settings: Settings, waiter: Any = None) -> None:
        self.redis = connection
        self.settings = settings
        self.waiter = waiter
        self._enter = connection.register_script(_ENTER)
        self._leave = connection.register_script(_LEAVE)

    def lock(self, session_id: str) -> Lock:
        """A lock whose release hands the session to the next job in line."""
        return _HandoverLock(self, session_id)

    def enter(self, lock: Lock, session_id: str, wait: float) -> None:
        """Take the session, or join its line (SessionQueued), or, for a caller that is not
        an RQ job, wait up to `wait` seconds (SessionLocked)."""
        waiter: Waiter | None = self.waiter() if self.waiter is not None else None
        deadline = time.monotonic() + wait
        while True:
            token = uuid.uuid4().hex.encode()
            state = self._try(lock, session_id, token, waiter)
            if state == 1:
                lock.local.token = token
                return
            if state == 2 and waiter is not None:
                log.info(
                    "session %s is busy: %s waits in line as %s",
                    session_id,
                    waiter.job_id,
                    waiter.continuation_id,
                )
                raise SessionQueued(session_id, waiter.continuation_id)
            if time.monotonic() >= deadline:
                raise SessionLocked(session_id)
            time.sleep(0.1)

    def _try(self, lock: Lock, session_id: str, token: bytes, waiter: Waiter | None) -> int:
        s = self.settings
        keys = [lock.name, _line_key(s, session_id), _index_key(s)]
        args: list[Any] = [token, int(s.lock_ttl * 1000), waiter.job_id if waiter else ""]
        args += [session_id, time.time(), LINE_TTL]
        if waiter is not None:
            keys.append(Job.redis_job_namespace_prefix + waiter.continuation_id)
            args.append(waiter.continuation_id)
            for key, value in waiter.fields.items():
                args += [key, value]
        return int(self._enter(keys=keys, args=args))

    def leave(self, session_id: str, token: bytes | str) -> int:
        """Free the session or hand it to the next in line: -1 when `token` (b'' only when
        free, b'*' whoever holds it) is not the holder's, 0 freed, 1 handed over."""
        s = self.settings
        queue_key = Queue.redis_queue_namespace_prefix + s.queue_name
        keys = [
            s.key("lock", session_id),
            _line_key(s, session_id),
            _index_key(s),
            queue_key,
            Queue.redis_queues_keys,
        ]
        args = [token, HANDOVER_SECONDS * 1000, Job.redis_job_namespace_prefix, session_id]
        args += [queue_key, utcformat(now())]
        return int(self._leave(keys=keys, args=args))

    def waiting(self, session_id: str) -> list[str]:
        """The job ids in the session's line, first first."""
        raw = self.redis.lrange(_line_key(self.settings, session_id), 0, -1)
        return [r.decode() if isinstance(r, bytes) else r for r in raw]

    def release_reserved(self, session_id: str, job_ids: list[str]) -> None:
        """After `job_ids` were cancelled: a lock reserved for one of them goes to the next
        in line (or is freed) instead of waiting for a job that will never run."""
        held = self.redis.get(self.settings.key("lock", session_id))
        held = held.decode() if isinstance(held, bytes) else held
        if held is not None and held.removeprefix(HANDOVER) in job_ids:
            self.leave(session_id, held)

    def free(self, session_id: str) -> None:
        """Free the session whoever holds it (its run was stopped), handing it on."""
        self.leave(session_id, "*")


class _HandoverLock(Lock):
    """redis-py's lock (renewal, `reacquire`) whose release goes through the line."""

    def __init__(self, line: SessionLine, session_id: str) -> None:
        super().__init__(
            line.redis,
            line.settings.key("lock", session_id),
            timeout=line.settings.lock_ttl,
            thread_local=False,  # the renewing thread uses the token the run acquired
        )
        self.line = line
        self.session_id = session_id

    def do_release(self, expected_token: str) -> None:
        if self.line.leave(self.session_id, expected_token) < 0:
            raise LockNotOwnedError("the session lock is no longer ours", lock_name=self.name)


def drain_stranded(connection: redis.Redis, settings: Settings) -> int:
    """Hand each session whose lock has gone (its holder died, or a reservation ran out)
    to the next job in its line; how many were handed on. Run by worker maintenance."""
    line = SessionLine(connection, settings)
    moved = 0
    for raw in connection.zrange(_index_key(settings), 0, -1):
        session_id = raw.decode() if isinstance(raw, bytes) else raw
        if line.leave(session_id, "") == 1:
            log.warning("session %s: its lock had gone; the next job in line runs", session_id)
            moved += 1
    return moved


def deferred_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """An RQ job hash (jobs/queue.py `job_hash`) as a continuation waiting in line."""
    return {**fields, "status": JobStatus.DEFERRED.value}
