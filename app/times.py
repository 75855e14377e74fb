"""Reading times and durations people type: `--since 6h` on the command line, `since=` and
`until=` in the feedback API. One grammar everywhere, and one sentence that shows it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Durations and times are a handful of characters; anything longer is not one.
_MAX_CHARS = 64


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `24h`, `7d`, `2w` or combinations such as `1h30m`, in seconds (more
    than zero); a ValueError that shows the accepted forms otherwise."""
    compact = text.strip().replace(" ", "")
    parts = _DURATION_RE.findall(compact) if len(compact) <= _MAX_CHARS else []
    seconds = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in parts)
    if not parts or "".join(n + u for n, u in parts).lower() != compact.lower() or seconds <= 0:
        raise ValueError(
            f"{text[:_MAX_CHARS]!r} is not a duration: use a number and a unit s, m, h, d or "
            "w, e.g. 30m, 24h, 7d or 1h30m"
        )
    return seconds


def parse_time(text: str) -> float:
    """An ISO 8601 time (a date alone is midnight UTC, no zone is UTC) or seconds since the
    epoch, as epoch seconds; a ValueError with an example otherwise."""
    text = text.strip()
    try:
        if len(text) > _MAX_CHARS:
            raise ValueError(text)
        return float(text)
    except ValueError:
        pass
    try:
        if len(text) > _MAX_CHARS:
            raise ValueError(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("use an ISO 8601 time such as 2026-12-01T09:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
