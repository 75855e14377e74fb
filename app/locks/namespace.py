"""Namespace locks: one plan or apply per target namespace at a time, across sessions and
repositories (as Atlantis locks a project between its plan and the merge).

A session takes the lock of a namespace before its first real (or dry-run) cluster call
there and keeps it while its pull request is open: the namespace then holds that pull
request's objects, and another one applying over them would make both plans lie. It is
freed by the merge or close of that pull request, by `/idp unlock` there, or by its TTL
(IDP_NAMESPACE_LOCK_TTL), so a lost event or a dead worker cannot hold it forever. Only its
owner (the session) frees it: compare-and-delete in one Lua script.

A session that finds the namespace held is recorded as a waiter; whoever frees the lock
takes the waiters (`release_session`) and lets them continue (app/handling/namespace_wait.py).

The API for the apply and plan paths: `NamespaceLocks.acquire(namespace, owner)` → None
(the lock is the owner's now, new or renewed) or `Held` (someone else's; its `sentence()`
names the holder for the todo), and `release_session(session_id)`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import redis

from app.config import Settings

# KEYS: lock hash, the owner's index set, the namespace's waiters.
# ARGV: session, repo, number, who, at, ttl, namespace, installation.
_ACQUIRE = """
local current = redis.call('HGET', KEYS[1], 'session')
if current and current ~= ARGV[1] then
  return redis.call('HGETALL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'session', ARGV[1], 'repo', ARGV[2], 'number', ARGV[3],
  'who', ARGV[4], 'at', ARGV[5], 'installation', ARGV[8])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('SADD', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('HDEL', KEYS[3], ARGV[1])
return false
"""
# KEYS: lock hash, the owner's index set. ARGV: session, namespace.
_RELEASE = """
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[1], 'session') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
MAX_WAITERS = 50  # a namespace's line; more waiters than this are told to try again later


@dataclass(frozen=True)
class LockOwner:
    """Who holds (or waits for) a namespace: the session, the conversation it answers on
    (repo#number: the App's pull request once there is one) and who applied."""

    session_id: str
    repo: str
    number: int
    who: str
    installation_id: int | None = None

    @property
    def where(self) -> str:
        return f"{self.repo}#{self.number}"


# How `Held.sentence` starts for a namespace: a todo's stale lock line is found by it.
LOCK_NOTE = "🔒 namespace `{}` is locked by "


@dataclass(frozen=True)
class Held:
    """A namespace another session holds, for the todo of the one that waits."""

    namespace: str
    holder: LockOwner
    since: float

    def sentence(self) -> str:
        h = self.holder
        return (
            f"{LOCK_NOTE.format(self.namespace)}{h.where} (session `{h.session_id}`, "
            f"applied by `{h.who}`); `/idp unlock` there releases it. This step continues "
            "once the lock is free."
        )


class NamespaceLocks:
    """The locks in Redis, under the install's prefix."""

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        self.redis = connection
        self.settings = settings
        self._acquire = connection.register_script(_ACQUIRE)
        self._release = connection.register_script(_RELEASE)

    def _lock_key(self, namespace: str) -> str:
        return self.settings.key("ns-lock", namespace)

    def _owned_key(self, session_id: str) -> str:
        return self.settings.key("ns-locks-of", session_id)

    def _waiters_key(self, namespace: str) -> str:
        return self.settings.key("ns-waiters", namespace)

    def acquire(self, namespace: str, owner: LockOwner) -> Held | None:
        """Take (or renew) `namespace` for `owner`'s session; `Held` when another session
        holds it, and `owner` is then in its line of waiters."""
        ttl = self.settings.namespace_lock_ttl
        found = self._acquire(
            keys=[
                self._lock_key(namespace),
                self._owned_key(owner.session_id),
                self._waiters_key(namespace),
            ],
            args=[
                owner.session_id,
                owner.repo,
                owner.number,
                owner.who,
                time.time(),
                ttl,
                namespace,
                owner.installation_id or "",
            ],
        )
        if not found:
            return None
        self._wait(namespace, owner)
        return Held(namespace, *_holder(_pairs(found)))

    def holder(self, namespace: str) -> Held | None:
        """Who holds `namespace` now, if anyone."""
        fields = self.redis.hgetall(self._lock_key(namespace))
        if not fields:
            return None
        return Held(namespace, *_holder({_text(k): _text(v) for k, v in fields.items()}))

    def held_by(self, session_id: str) -> list[str]:
        """The namespaces `session_id` holds (its index may name one whose lock expired)."""
        names = self.redis.smembers(self._owned_key(session_id))
        return sorted(n for n in map(_text, names) if self._owner_of(n) == session_id)

    def release(self, namespace: str, session_id: str) -> bool:
        """Free `namespace` if `session_id` holds it (compare-and-delete); True when it did."""
        keys = [self._lock_key(namespace), self._owned_key(session_id)]
        return bool(self._release(keys=keys, args=[session_id, namespace]))

    def release_session(self, session_id: str) -> dict[str, list[LockOwner]]:
        """Free every namespace `session_id` holds; each freed one with the waiters it had
        (taken out of its line: the caller lets them continue)."""
        freed: dict[str, list[LockOwner]] = {}
        for namespace in sorted(map(_text, self.redis.smembers(self._owned_key(session_id)))):
            if self.release(namespace, session_id):
                freed[namespace] = self._take_waiters(namespace)
        return freed

    def _owner_of(self, namespace: str) -> str | None:
        value = self.redis.hget(self._lock_key(namespace), "session")
        return None if value is None else _text(value)

    def _wait(self, namespace: str, owner: LockOwner) -> None:
        key = self._waiters_key(namespace)
        if self.redis.hlen(key) >= MAX_WAITERS and not self.redis.hexists(key, owner.session_id):
            return
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, owner.session_id, json.dumps(asdict(owner)))
        pipe.expire(key, self.settings.namespace_lock_ttl)
        pipe.execute()

    def _take_waiters(self, namespace: str) -> list[LockOwner]:
        key = self._waiters_key(namespace)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(key)
        pipe.delete(key)
        raw, _ = pipe.execute()
        waiters = []
        for value in raw.values():
            try:
                waiters.append(LockOwner(**json.loads(_text(value))))
            except (TypeError, ValueError):
                continue  # not ours to crash on: the waiter can still `/idp apply` again
        return sorted(waiters, key=lambda w: w.session_id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(flat: list) -> dict[str, str]:
    items = [_text(v) for v in flat]
    return dict(zip(items[::2], items[1::2], strict=True))


def _holder(fields: dict[str, str]) -> tuple[LockOwner, float]:
    installation = fields.get("installation") or ""
    owner = LockOwner(
        session_id=fields.get("session", "?"),
        repo=fields.get("repo", "?"),
        number=int(fields.get("number") or 0),
        who=fields.get("who", "?"),
        installation_id=int(installation) if installation.isdigit() else None,
    )
    return owner, float(fields.get("at") or 0)


def target_namespace(target: str) -> str | None:
    """The namespace a gated call's approval target names (`namespace \\`x\\``, as the
    cluster tools' approval scopes word it, tools/builtin/cluster.py), else None."""
    prefix = "namespace `"
    if not target.startswith(prefix) or not target.endswith("`"):
        return None
    name = target[len(prefix) : -1]
    return name if name and "`" not in name and " " not in name else None
