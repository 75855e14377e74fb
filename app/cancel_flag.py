"""The cancel flag: one Redis key per session, set by a cancel and read by the running agent.

A cancel (jobs/cancel.py `cancel_session`, whether from `/idp cancel`, the operator API or the
console) sets it; the agent checks it with one `EXISTS` at the end of every step, instead of
reloading the whole session to read its status, and stops with `Cancelled`. The key has a TTL
longer than any job (`job_timeout`), so a flag nobody reads does not outlive the run it was
meant for; a run that starts on a session a new command resumed clears a stale one.
"""

from __future__ import annotations

import time

import redis

from app.config import Settings

# Past the longest job, plus the time a cancel waits for it to stop.
TTL_MARGIN_SECONDS = 120


class CancelFlag:
    """Set, read and clear the cancel flag of sessions."""

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        self.redis = connection
        self.settings = settings

    def key(self, session_id: str) -> str:
        return self.settings.key("cancel", session_id)

    def set(self, session_id: str) -> None:
        """Ask the session's running agent, if any, to stop at its next step."""
        ttl = self.settings.job_timeout + TTL_MARGIN_SECONDS
        self.redis.set(self.key(session_id), f"{time.time():.3f}", ex=ttl)

    def is_set(self, session_id: str) -> bool:
        return bool(self.redis.exists(self.key(session_id)))

    def clear(self, session_id: str) -> None:
        self.redis.delete(self.key(session_id))
