"""Users' feedback on a session, kept in a Redis stream and exported with the session's outcome.

`/idp feedback TEXT` and 👍/👎 reactions on the todo comment are stored per session
(`FeedbackStore.add`, `add_reaction`); the team that runs the App reads them with
`idp-copilot feedback export --format jsonl`. Each exported line keeps the prototype's
feedback-file fields (session id, user feedback, rating, timestamp, performance metrics,
execution results), with the outcome read from the session at export time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, Literal

import redis
from pydantic import ValidationError

from app.audit import read_stream, scrub, stream_time
from app.config import Settings
from app.domain.session import Session
from app.state import SessionStore

FeedbackSource = Literal["command", "reaction"]
MAX_TEXT = 10_000
# Reaction contents (GitHub's names) that rate a session.
REACTION_RATINGS: dict[str, int] = {"+1": 1, "-1": -1}
_METRIC_KEYS = ("step_count", "duration_seconds", "tool_seconds", "token_usage")

# Add the entry only if its dedupe key is new, in one step: a redelivered command or a
# reaction seen again on the next poll stores nothing twice, and a crash cannot leave the
# key marked without the entry. Each dedupe key is a key of its own that lives as long as
# a session (seeing it again renews it: the session is alive); the stream is capped.
# KEYS: the stream, then the dedupe key when there is one. ARGV: data, maxlen, dedupe ttl.
_ADD_ONCE = """
if KEYS[2] and not redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[3]) then
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return false
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[1])
"""


def from_reaction(content: str) -> int | None:
    """The rating a reaction gives: 👍 (`+1`) is +1, 👎 (`-1`) is -1, any other None."""
    return REACTION_RATINGS.get(content)


def outcome_of(session: Session) -> dict[str, Any]:
    """What a session did and cost: status, command, PR, steps, duration and tokens."""
    steps = session.steps
    return {
        "status": session.status,
        "command": session.command,
        "pr_url": session.pr_url,
        "failed_steps": sum(1 for s in steps if not s.ok),
        "step_count": len(steps),
        "duration_seconds": round(max(0.0, session.updated_at - session.created_at), 3),
        "tool_seconds": round(sum(max(0.0, s.finished_at - s.started_at) for s in steps), 3),
        "token_usage": dict(session.token_usage),
    }


class FeedbackStore:
    """Feedback entries under `settings.key("feedback")`, oldest first; the stream keeps the
    newest IDP_FEEDBACK_MAX_ENTRIES (approximately)."""

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        self.redis = connection
        self.settings = settings
        self.key = settings.key("feedback")
        self._add_once = connection.register_script(_ADD_ONCE)

    def add(
        self,
        session_id: str,
        user: str,
        text: str | None = None,
        rating: int | None = None,
        source: FeedbackSource = "command",
        outcome: dict[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> str | None:
        """Store one piece of feedback; returns its id, or None when `dedupe_key` (e.g. the
        comment id of the `/idp feedback` comment) was stored before. `text` is redacted;
        `rating` is -1, 0 or +1; `outcome` is the session's state when it was given
        (`outcome_of(session)`), kept for sessions that are gone by export time."""
        if source not in ("command", "reaction"):
            raise ValueError(f"unknown feedback source {source!r}: use 'command' or 'reaction'")
        if rating is not None and rating not in (-1, 0, 1):
            raise ValueError(f"rating must be -1, 0 or 1, not {rating!r}")
        if not (text and text.strip()) and rating is None:
            raise ValueError("feedback needs a text or a rating")
        secrets = self.settings.secret_values()
        entry = {
            "session_id": session_id,
            "user": user,
            "user_feedback": scrub(text.strip()[:MAX_TEXT], secrets) if text else None,
            "rating": rating,
            "source": source,
            "outcome": scrub(outcome or {}, secrets),
        }
        data = json.dumps(entry, ensure_ascii=False, default=str)
        keys = [self.key]
        if dedupe_key:
            digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
            keys.append(self.settings.key("feedback", "seen", digest))
        settings = self.settings
        args = [data, settings.feedback_max_entries, settings.session_ttl]
        new_id = self._add_once(keys=keys, args=args)
        if new_id is None:
            return None
        return new_id.decode() if isinstance(new_id, bytes) else new_id

    def add_reaction(
        self, session_id: str, user: str, content: str, outcome: dict[str, Any] | None = None
    ) -> str | None:
        """Store a 👍/👎 reaction on the session's todo comment, once per user and content;
        None for other reactions and for one already stored. GitHub sends no webhook for
        reactions, so callers read them from the comment and may pass the same ones again."""
        rating = from_reaction(content)
        if rating is None:
            return None
        return self.add(
            session_id,
            user,
            rating=rating,
            source="reaction",
            outcome=outcome,
            dedupe_key=f"reaction:{session_id}:{user}:{content}",
        )

    def entries(self) -> Iterator[dict[str, Any]]:
        """Stored entries, oldest first, each with its `id` and `timestamp`."""
        for entry_id, entry in read_stream(self.redis, self.key):
            yield {"id": entry_id, "timestamp": stream_time(entry_id), **entry}

    def export(self, fmt: str = "jsonl") -> Iterator[str]:
        """One JSON line (no newline) per entry, joined with its session's outcome now; the
        outcome stored with the entry fills in when the session is gone."""
        if fmt != "jsonl":
            raise ValueError(f"unknown export format {fmt!r}: use jsonl")
        sessions = SessionStore(self.redis, self.settings)
        outcomes: dict[str, dict[str, Any] | None] = {}
        secrets = self.settings.secret_values()
        for entry in self.entries():
            sid = entry["session_id"]
            if sid not in outcomes:
                outcomes[sid] = self._current_outcome(sessions, sid)
            current = outcomes[sid]
            merged = {**entry.pop("outcome", {}), **(current or {})}
            line = {
                **entry,
                "session_found": current is not None,
                "execution_results": {k: v for k, v in merged.items() if k not in _METRIC_KEYS},
                "performance_metrics": {k: v for k, v in merged.items() if k in _METRIC_KEYS},
            }
            yield json.dumps(scrub(line, secrets), ensure_ascii=False)

    @staticmethod
    def _current_outcome(sessions: SessionStore, session_id: str) -> dict[str, Any] | None:
        try:
            session = sessions.get(session_id)
        except ValidationError:
            # A session saved by a newer schema: export the stored outcome rather than fail.
            return None
        return None if session is None else outcome_of(session)
