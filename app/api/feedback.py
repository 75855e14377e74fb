"""Feedback as the operator API and the console show it: entries filtered by repository and
time, and 👍/👎 counts per session for the sessions list.

Entries live in one Redis stream (app/feedback.py); a stream id is the time it was added in
milliseconds, so a time filter is an `XRANGE` between two ids. A caller sees feedback only
on repositories they can read, as everywhere in the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.auth import Principal
from app.api.control import REPO_PATTERN, repo_of
from app.audit import stream_time
from app.config import Settings
from app.feedback import FeedbackStore
from app.times import parse_time

PAGE = 500


class FeedbackQuery(BaseModel):
    """`GET /api/feedback` query parameters; `since` and `until` are ISO 8601 times (a date
    alone is midnight UTC) or seconds since the epoch."""

    model_config = ConfigDict(extra="ignore")

    repo: str | None = Field(None, pattern=REPO_PATTERN)
    since: float | None = None
    until: float | None = None
    limit: int = Field(100, ge=1, le=1000)

    @field_validator("since", "until", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if value in (None, ""):
            return None
        return parse_time(str(value))


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))


class FeedbackView:
    """Reads of the feedback stream for one web process."""

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        self.redis = connection
        self.key = FeedbackStore(connection, settings).key

    def _entries(self, low: str = "-", high: str = "+") -> Iterator[tuple[str, dict[str, Any]]]:
        """Newest first, page by page."""
        cursor = high
        while True:
            page = self.redis.xrevrange(self.key, max=cursor, min=low, count=PAGE)
            for entry_id, fields in page:
                ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                raw = fields.get(b"data", fields.get("data"))
                try:
                    yield ident, json.loads(raw)
                except (TypeError, ValueError):
                    continue  # a foreign entry in our stream is not ours to show
            if len(page) < PAGE:
                return
            last = page[-1][0]
            cursor = "(" + (last.decode() if isinstance(last, bytes) else last)

    def query(self, principal: Principal, q: FeedbackQuery) -> list[dict[str, Any]]:
        """Matching entries the caller may read, newest first, at most `q.limit`."""
        low = str(_ms(q.since)) if q.since is not None else "-"
        high = str(_ms(q.until)) if q.until is not None else "+"
        wanted = q.repo.lower() if q.repo else None
        out: list[dict[str, Any]] = []
        for ident, entry in self._entries(low, high):
            repo = repo_of(str(entry.get("session_id", "")))
            if not principal.can_read(repo) or wanted not in (None, repo.lower()):
                continue
            out.append(
                {
                    "id": ident,
                    "timestamp": stream_time(ident),
                    "repo": repo,
                    "session_id": entry.get("session_id"),
                    "user": entry.get("user"),
                    "rating": entry.get("rating"),
                    "text": entry.get("user_feedback"),
                    "source": entry.get("source"),
                    "outcome": entry.get("outcome") or {},
                }
            )
            if len(out) >= q.limit:
                break
        return out

    def counts(self, session_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """👍 and 👎 per session of `session_ids` (each session present, zeros included)."""
        counts = {sid: {"up": 0, "down": 0} for sid in session_ids}
        if not counts:
            return counts
        for _, entry in self._entries():
            found = counts.get(str(entry.get("session_id")))
            if found is None:
                continue
            if entry.get("rating") == 1:
                found["up"] += 1
            elif entry.get("rating") == -1:
                found["down"] += 1
        return counts
