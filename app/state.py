"""Sessions in Redis (versioned JSON, never pickle) and the per-session lock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import redis
from redis.lock import Lock

from app.config import Settings
from app.domain.session import Session
from app.session_line import SessionLine

log = logging.getLogger(__name__)


def write_session(pipe: Any, settings: Settings, session: Session) -> None:
    """Queue on `pipe` the writes of one save: the session, living IDP_SESSION_TTL after this
    change (a running session is saved at every step, so it never expires while it runs;
    an ended or abandoned one goes that long after its last change), and its index entry."""
    key = settings.key("session", session.id)
    pipe.set(key, session.model_dump_json(), ex=settings.session_ttl)
    index_session(pipe, settings, session)


def index_session(pipe: Any, settings: Settings, session: Session) -> None:
    """The listing index (id → update time) with the entries of expired sessions trimmed,
    so the index is bounded like the sessions it lists."""
    index = settings.key("sessions")
    pipe.zadd(index, {session.id: session.updated_at})
    pipe.zremrangebyscore(index, "-inf", f"({session.updated_at - settings.session_ttl}")
    pipe.expire(index, settings.session_ttl)


class SessionStore:
    """Load, save and lock sessions. Keys live under the install's prefix."""

    def __init__(
        self, connection: redis.Redis, settings: Settings, line: SessionLine | None = None
    ) -> None:
        self.redis = connection
        self.settings = settings
        # A worker's job passes a line with its waiter: a busy session puts the job in line
        # behind the run (SessionQueued) instead of making it wait here.
        self.line = line if line is not None else SessionLine(connection, settings)

    def _key(self, session_id: str) -> str:
        return self.settings.key("session", session_id)

    def get(self, session_id: str) -> Session | None:
        raw = self.redis.get(self._key(session_id))
        if raw is None:
            return None
        return Session.model_validate_json(raw)

    def save(self, session: Session) -> None:
        """Checkpoint: the whole session as JSON, indexed by update time for listings."""
        session.updated_at = time.time()
        pipe = self.redis.pipeline(transaction=True)
        write_session(pipe, self.settings, session)
        pipe.execute()

    def create(self, session: Session) -> bool:
        """Save `session` only if no session has its id yet (SET NX); True when it did."""
        session.updated_at = time.time()
        ttl = self.settings.session_ttl
        if not self.redis.set(self._key(session.id), session.model_dump_json(), nx=True, ex=ttl):
            return False
        pipe = self.redis.pipeline(transaction=True)
        index_session(pipe, self.settings, session)
        pipe.execute()
        return True

    def get_many(self, session_ids: list[str]) -> list[Session | None]:
        """Several sessions in one round trip (MGET); None where one no longer exists."""
        if not session_ids:
            return []
        raws = self.redis.mget([self._key(i) for i in session_ids])
        return [None if raw is None else Session.model_validate_json(raw) for raw in raws]

    def list_ids(self, start: int = 0, stop: int = -1) -> list[str]:
        """Session ids, newest first."""
        raw = self.redis.zrevrange(self.settings.key("sessions"), start, stop)
        return [r.decode() if isinstance(r, bytes) else r for r in raw]

    def delete(self, session_id: str) -> None:
        self.redis.delete(self._key(session_id))
        self.redis.zrem(self.settings.key("sessions"), session_id)

    @contextmanager
    def lock(self, session_id: str, wait: float = 30.0) -> Iterator[Lock]:
        """Hold the session for one run (or, with a line, join the line behind the run that
        holds it: SessionQueued). A thread renews the lock every third of its TTL
        while the process lives, however long one step takes; when the process dies
        (SIGKILL, OOM) the TTL frees it. The loop's `lock.reacquire()` at every step stays
        harmless."""
        lock = self.line.lock(session_id)
        self.line.enter(lock, session_id, wait)
        stop = threading.Event()
        renewer = threading.Thread(
            target=_renew,
            args=(lock, stop, self.settings.lock_ttl / 3),
            name=f"lock-renewal {session_id}",
            daemon=True,
        )
        renewer.start()
        try:
            yield lock
        finally:
            stop.set()
            renewer.join()
            # expired while we ran: someone else may hold it now; not ours to free
            with suppress(redis.exceptions.LockError):
                lock.release()


def _renew(lock: Lock, stop: threading.Event, every: float) -> None:
    """Reset the lock's TTL every `every` seconds until `stop` is set or the lock is lost."""
    while not stop.wait(every):
        try:
            lock.reacquire()
        except redis.exceptions.LockError:
            log.error("session lock %s was lost: another run may hold it now", lock.name)
            return
        except redis.exceptions.RedisError as exc:  # the next round tries again
            log.warning("session lock %s not renewed: %s", lock.name, exc)


def connect(settings: Settings) -> redis.Redis:
    """The one Redis client of a process (bytes responses, as RQ requires)."""
    return redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
