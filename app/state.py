"""Sessions in Redis (versioned JSON, never pickle) and the per-session lock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Literal

import redis
from pydantic import BaseModel, Field
from redis.lock import Lock

from app.config import Settings
from app.domain.service import ServiceRequest
from app.domain.todo import Todo
from app.session_line import SessionLine

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SessionStatus = Literal["new", "planned", "running", "waiting", "done", "failed", "cancelled"]


def session_id_for(repo: str, number: int) -> str:
    """One session per issue or pull request."""
    return f"{repo}#{number}"


class StepRecord(BaseModel):
    """A completed (or failed) tool call; side effects are keyed so a re-run never repeats one."""

    task_id: str | None = None
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str
    ok: bool
    output: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    started_at: float
    finished_at: float


class Approval(BaseModel):
    """One `/idp apply` (or an auto-deploy merge) for one gated call: the digest shown in the
    todo (tools/approval.py) and who approved it. A call whose digest differs is not covered."""

    task_id: str | None = None
    tool: str
    digest: str
    args_digest: str | None = Field(
        None, description="Digest of the tool and arguments alone: tells 'files changed' apart"
    )
    by: str
    at: float = Field(default_factory=time.time)


class Session(BaseModel):
    """Everything the agent knows about one issue or PR, checkpointed after every step."""

    schema_version: int = SCHEMA_VERSION
    id: str
    repo: str
    number: int
    is_pull_request: bool = False
    installation_id: int | None = None
    requester: str | None = None
    command: str | None = None
    status: SessionStatus = "new"
    request: ServiceRequest | None = None
    request_text: str | None = None
    todo: Todo | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    comment_id: int | None = None
    rendered_todo: str | None = None
    branch: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    head_sha: str | None = None
    # Who approved last (shown in the console and the model's prompt); what they approved
    # is in `approvals`, one digest per gated call.
    approved_by: str | None = None
    approvals: list[Approval] = Field(default_factory=list)
    # Repositories (owner/name, lower case) the repository tools created for this session:
    # the only ones they may touch again (protection, a retry).
    created_repos: list[str] = Field(default_factory=list)
    # The RQ job running this session now (None between runs): what `/idp cancel` stops.
    job_id: str | None = None
    # When and by whom the App's pull request was merged (`pull_request.closed`, merged).
    merged_at: float | None = None
    merged_by: str | None = None
    messages: list[dict[str, Any]] = Field(default_factory=list)
    token_usage: dict[str, int] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    def approval_for(self, tool: str, digest: str | None) -> Approval | None:
        """The approval covering a call of `tool` with this digest, if any."""
        for approval in self.approvals:
            if digest and approval.tool == tool and approval.digest == digest:
                return approval
        return None

    def clear_approvals(self) -> None:
        """New content: every approval given is void."""
        self.approved_by = None
        self.approvals = []

    def step_for(self, idempotency_key: str) -> StepRecord | None:
        """The recorded successful result of a side effect, if it already ran."""
        for step in self.steps:
            if step.idempotency_key == idempotency_key and step.ok:
                return step
        return None


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
