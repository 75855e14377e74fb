"""The event bus: what the agent does, as it happens, for the operator API's streams.

Workers publish every todo change, step, tool call and result to a Redis stream per session
(and a summary line to one global stream for the sessions list); any web process reads them
back, so an EventSource may reconnect to another process and resume from its last id.
Stream ids are Redis's own (`1700000000000-0`): ordered, and what SSE sends as `id:`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from app.config import Settings
from app.redaction import redact

log = logging.getLogger(__name__)

# Enough for the longest run the loop guard allows, with room to spare; older events of a
# session are trimmed (approximately: `~` lets Redis trim whole nodes, which is cheap).
SESSION_MAXLEN = 1000
GLOBAL_MAXLEN = 10_000
# A session's stream outlives its last event by a week, like the delivery dedupe keys.
STREAM_TTL = 7 * 24 * 3600
STREAM_ID_RE = re.compile(r"^\d{1,20}-\d{1,20}$")
# Stream ids that mean "from the start" and "only what comes next".
FROM_START = "0-0"


def valid_stream_id(value: str) -> bool:
    """True for a Redis stream id as the streams send it (`MILLISECONDS-SEQUENCE`)."""
    return bool(STREAM_ID_RE.fullmatch(value))


@dataclass(frozen=True)
class Event:
    """One published event: its stream id, the session, a kind and a JSON-ready body."""

    id: str
    session_id: str
    kind: str
    data: dict[str, Any]
    time: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session": self.session_id,
            "kind": self.kind,
            "data": self.data,
            "time": self.time,
        }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _event(stream_id: bytes | str, fields: dict) -> Event:
    decoded = {_text(k): _text(v) for k, v in fields.items()}
    try:
        data = json.loads(decoded.get("data", "{}"))
    except ValueError:
        data = {}
    return Event(
        id=_text(stream_id),
        session_id=decoded.get("session", ""),
        kind=decoded.get("kind", "event"),
        data=data if isinstance(data, dict) else {"value": data},
        time=float(decoded.get("time", 0) or 0),
    )


def _events(reply: Any) -> list[Event]:
    """XREAD's reply (one stream) as events."""
    if not reply:
        return []
    _, entries = reply[0]
    return [_event(stream_id, fields) for stream_id, fields in entries]


class EventBus:
    """Publish and read session events. `connection` is the process's (sync) Redis client;
    async readers (the SSE endpoints) pass their own `redis.asyncio` client to `aread`."""

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        self.redis = connection
        self.settings = settings

    def stream_key(self, session_id: str) -> str:
        return self.settings.key("events", session_id)

    @property
    def global_key(self) -> str:
        return self.settings.key("event-stream")

    def publish(self, session_id: str, kind: str, data: dict[str, Any]) -> str:
        """Append one event to the session's stream (and a line to the global one); returns
        its stream id. Secret values are redacted before anything is written."""
        body = json.dumps(data, default=str, ensure_ascii=False)
        body = redact(body, self.settings.secret_values())
        now = f"{time.time():.3f}"
        fields = {"session": session_id, "kind": kind, "data": body, "time": now}
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(self.stream_key(session_id), fields, maxlen=SESSION_MAXLEN, approximate=True)
        pipe.expire(self.stream_key(session_id), STREAM_TTL)
        # The sessions list needs to know which session moved, not every tool argument.
        summary = {"session": session_id, "kind": kind, "data": _summary(kind, data), "time": now}
        pipe.xadd(self.global_key, summary, maxlen=GLOBAL_MAXLEN, approximate=True)
        stream_id = pipe.execute()[0]
        return _text(stream_id)

    def sink(self, session_id: str) -> Callable[[str, dict[str, Any]], None]:
        """The `on_event` callback for one session's agent run. A Redis hiccup loses the
        live event, never the run: the session itself is checkpointed separately."""

        def on_event(kind: str, data: dict[str, Any]) -> None:
            try:
                self.publish(session_id, kind, data)
            except redis.RedisError as exc:
                log.warning("event %s of %s not published: %s", kind, session_id, exc)

        return on_event

    def read(
        self,
        session_id: str,
        last_id: str = FROM_START,
        block_ms: int | None = None,
        count: int = 100,
    ) -> list[Event]:
        """Events after `last_id` (oldest first), waiting up to `block_ms` for the first."""
        reply = self.redis.xread({self.stream_key(session_id): last_id}, count, block_ms)
        return _events(reply)

    def last_id(self, session_id: str | None = None) -> str:
        """The id of the newest event (of a session, or of the global stream), or `0-0`."""
        key = self.global_key if session_id is None else self.stream_key(session_id)
        newest = self.redis.xrevrange(key, count=1)
        return _text(newest[0][0]) if newest else FROM_START

    def history(self, session_id: str, count: int = SESSION_MAXLEN) -> list[Event]:
        """A session's newest `count` stored events, oldest first (for the session page)."""
        entries = self.redis.xrevrange(self.stream_key(session_id), count=count)[::-1]
        return [_event(stream_id, fields) for stream_id, fields in entries]

    async def aread(
        self,
        client: redis.asyncio.Redis,
        session_id: str | None,
        last_id: str,
        block_ms: int,
        count: int = 100,
    ) -> list[Event]:
        """Like `read`, on an asyncio client; `session_id=None` reads the global stream."""
        key = self.global_key if session_id is None else self.stream_key(session_id)
        reply = await client.xread({key: last_id}, count, block_ms)
        return _events(reply)


def _summary(kind: str, data: dict[str, Any]) -> str:
    """The global stream's body: only fields a sessions list shows."""
    keep = {
        k: data[k]
        for k in ("status", "id", "steps")
        if k in data and isinstance(data[k], str | int | float)
    }
    return json.dumps(keep, default=str)
