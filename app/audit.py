"""The audit log: every side effect on GitHub or a cluster, and every action taken through
the operator API or the console, appended to a Redis stream.

Job handlers and tools call `AuditLog.record` after each side effect (comment, branch,
commit, pull request, repository, branch protection, namespace, deploy, check run, label)
with who asked, which command and which session; the API and the console record session
starts, messages and cancels, agent-system changes and sign-ins with the operator token's
name or the GitHub login. Operators read it with `idp-copilot audit export`. Entries never
hold secrets: every string is redacted before it is written. The stream is capped
(IDP_AUDIT_MAX_ENTRIES, trimmed approximately).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import redis

from app.config import Settings
from app.redaction import redactor_for
from app.redaction import scrub as scrub  # its callers import it from here too

AuditAction = Literal[
    "comment",
    "branch",
    "commit",
    "pull_request",
    "repository",
    "namespace",
    "deploy",
    "check_run",
    "label",
    "branch_protection",
    # `/idp retry` re-running the failed jobs of a workflow run on the App's pull request.
    "workflow_run",
    "issue",
    # What operators and signed-in users do through the operator API and the console.
    "session",
    "agent_system",
    "sign_in",
]
ACTIONS: tuple[str, ...] = AuditAction.__args__  # type: ignore[attr-defined]
_PAGE = 500


def stream_time(entry_id: bytes | str) -> str:
    """The ISO 8601 UTC time of a stream entry, from its id (milliseconds since the epoch)."""
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms = int(raw.split("-", 1)[0])
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def read_stream(
    connection: redis.Redis, key: str, start: str = "-"
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every entry of a stream of JSON entries from `start`, oldest first, page by page."""
    cursor = start
    while True:
        page = connection.xrange(key, min=cursor, max="+", count=_PAGE)
        for entry_id, fields in page:
            raw = fields.get(b"data", fields.get("data"))
            ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            yield ident, json.loads(raw)
        if len(page) < _PAGE:
            return
        cursor = "(" + (page[-1][0].decode() if isinstance(page[-1][0], bytes) else page[-1][0])


class AuditLog:
    """Append-only record of side effects under `settings.key("audit")`, in time order."""

    def __init__(
        self,
        connection: redis.Redis,
        settings: Settings,
        *,
        max_entries: int | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.redis = connection
        self.settings = settings
        self.key = settings.key("audit")
        # Approximate trim (MAXLEN ~): Redis drops whole old nodes, cheaply, past the cap.
        self.max_entries = settings.audit_max_entries if max_entries is None else max_entries
        # None: Redis's clock stamps entries, so several workers agree on the order.
        self.clock = clock

    def record(
        self,
        action: AuditAction,
        *,
        session_id: str | None,
        actor: str | None,
        command: str | None,
        target: str,
        result: str,
        detail: dict[str, Any] | None = None,
    ) -> str:
        """Append one side effect; returns the entry id. Call it after the side effect, with
        `target` naming what changed (`acme/payments#12`, a branch, a namespace) and
        `result` what happened (`created`, `updated`, `unchanged`, `failed: …`)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}: use one of {', '.join(ACTIONS)}")
        entry = redactor_for(self.settings.secret_values()).scrub(
            {
                "action": action,
                "session_id": session_id,
                "actor": actor,
                "command": command,
                "target": target,
                "result": result,
                "detail": detail or {},
            }
        )
        data = json.dumps(entry, ensure_ascii=False, default=str)
        entry_id = "*" if self.clock is None else f"{int(self.clock() * 1000)}-*"
        try:
            new_id = self._add(entry_id, data)
        except redis.ResponseError:
            # A clock behind the newest entry (another worker's): Redis's clock keeps order.
            new_id = self._add("*", data)
        return new_id.decode() if isinstance(new_id, bytes) else new_id

    def _add(self, entry_id: str, data: str) -> Any:
        return self.redis.xadd(
            self.key, {"data": data}, id=entry_id, maxlen=self.max_entries, approximate=True
        )

    def entries(self, since_seconds: float | None = None) -> Iterator[dict[str, Any]]:
        """Entries oldest first, each with its `id` and `time`; only the last `since_seconds`
        when given."""
        start = "-"
        if since_seconds is not None:
            start = str(max(0, int((self._now() - since_seconds) * 1000)))
        for entry_id, entry in read_stream(self.redis, self.key, start):
            yield {"id": entry_id, "time": stream_time(entry_id), **entry}

    def export(self, since_seconds: float | None = None) -> Iterator[str]:
        """The entries as JSON lines (no newline), oldest first: `idp-copilot audit export`."""
        for entry in self.entries(since_seconds):
            yield json.dumps(entry, ensure_ascii=False)

    def _now(self) -> float:
        if self.clock is not None:
            return self.clock()
        seconds, micros = self.redis.time()
        return seconds + micros / 1_000_000
