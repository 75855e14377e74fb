"""Budgets in Redis: fixed windows that count what a user or an installation spent.

Used by app/handling/authorize.py (read-level commands per user and repository) and by
app/agent/providers/budgeted.py (model tokens per installation and day). A window is one
key per period (`…:<period number>`) that expires with its period, so nothing outlives it
and every worker shares the count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from app.config import Settings

# The commands anyone who can comment may run (app/repo_config.py DEFAULT_PERMISSIONS):
# rate-limited per user and repository, as they need no permission at all.
READ_VERBS = frozenset({"ask", "help", "status", "feedback"})
HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True)
class Window:
    """One fixed window of `seconds`: its number and when it ends (epoch seconds)."""

    seconds: int
    number: int

    @classmethod
    def now(cls, seconds: int, clock: float | None = None) -> Window:
        return cls(seconds, int((time.time() if clock is None else clock) // seconds))

    @property
    def ends_at(self) -> int:
        return (self.number + 1) * self.seconds

    def ttl(self) -> int:
        """Seconds a key of this window lives: to its end, plus a minute for clock skew."""
        return max(1, self.ends_at - int(time.time())) + 60


def spend(
    connection: redis.Redis, settings: Settings, window: Window, amount: int, *parts: object
) -> int:
    """Add `amount` to the window's counter named by `parts`; the new total."""
    key = settings.key("budget", *parts, window.number)
    pipe = connection.pipeline()
    pipe.incrby(key, amount)
    pipe.expire(key, window.ttl())
    total, _ = pipe.execute()
    return int(total)


def spent(connection: redis.Redis, settings: Settings, window: Window, *parts: object) -> int:
    """What the window's counter named by `parts` holds (0 when nothing was spent)."""
    value = connection.get(settings.key("budget", *parts, window.number))
    return int(value or 0)


def first_notice(
    connection: redis.Redis, settings: Settings, window: Window, *parts: object
) -> bool:
    """True once per window for `parts`: whether the App should say a budget is spent."""
    key = settings.key("budget", "notice", *parts, window.number)
    return bool(connection.set(key, 1, nx=True, ex=window.ttl()))


def take_read_command(connection: redis.Redis, settings: Settings, repo: str, user: str) -> bool:
    """Charge one read-level command to `user` in `repo`; False past the hourly budget."""
    limit = settings.read_commands_per_hour
    if limit <= 0:
        return True
    window = Window.now(HOUR)
    return spend(connection, settings, window, 1, "read", repo.lower(), user.lower()) <= limit


def write_headroom(connection: redis.Redis, settings: Settings, installation_id: int) -> int:
    """How many writes the installation's GitHub write budget still has in its tightest
    window (app/github/throttle.py keeps its log of slots under `gh-writes`); a large number
    when no limit is on. The upkeep sweep asks before it starts an upgrade, so a sweep never
    spends what people's commands need."""
    windows = [
        (seconds, limit)
        for seconds, limit in (
            (60, settings.github_writes_per_minute),
            (HOUR, settings.github_writes_per_hour),
        )
        if limit > 0
    ]
    if not windows:
        return 1_000_000
    key = settings.key("gh-writes", installation_id)
    now = time.time()
    try:
        return min(
            limit - int(connection.zcount(key, now - seconds, "+inf")) for seconds, limit in windows
        )
    except redis.RedisError:
        return 1_000_000  # pacing is courtesy (throttle.py); GitHub's own limit still holds
