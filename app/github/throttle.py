"""GitHub write etiquette shared by every worker: a githubkit throttler that keeps githubkit's
local concurrency limit and paces each installation's writes through a budget in Redis.

GitHub's secondary rate limits allow no more than 80 content-generating requests a minute
and 500 an hour (docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api), and
its best practices ask for a second between requests when making a large number of mutative
ones (docs.github.com/rest/guides/best-practices-for-using-the-rest-api). Every worker process
acting for one installation draws from one budget, so the budget lives in Redis, not in a
process. A write reserves the next free slot in one Lua call and sleeps until it; reads
(GET, HEAD, OPTIONS) only pass the concurrency limit.

Every write counts in the minute and hour windows. The spacing applies to the writes that
create content people see and are notified of (`content_creating`: a comment, an issue, a
pull request, a review, a release); the App's other writes in a workflow (a reaction, a
comment edit, git objects and refs, a check run, labels) go out as soon as the windows allow,
so a workflow's dozen writes no longer queue a second behind each other.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import httpx
import redis
from githubkit.exception import GitHubException
from githubkit.throttling import BaseThrottler, LocalThrottler

from app.config import Settings

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# POSTs that create content: issues and their comments, pull requests, their reviews and
# review comments (and replies), commit comments, releases, discussions, gists.
_CONTENT_PATH = re.compile(
    r"/repos/[^/]+/[^/]+/(?:issues(?:/\d+/comments)?|pulls(?:/\d+/(?:reviews|comments"
    r"(?:/\d+/replies)?))?|commits/[^/]+/comments|releases|discussions(?:/\d+/comments)?)/?$"
    r"|/gists/?$"
)
# githubkit's own default; GitHub allows 100 concurrent requests per client.
MAX_CONCURRENCY = 100
# Longest a write waits for its slot. Further out, the budget is spent for a while (the hourly
# window): holding a worker that long helps nobody, so the call fails with a retry time.
MAX_WAIT = 300.0

# Sliding windows over a log of reserved slots (sorted set: random member → slot time), and
# the slot of the latest content-creating write (KEYS[2]). The slot is the earliest time at
# or after now that keeps every window under its limit and, for a content-creating write
# (ARGV[5] = 1), the interval after the latest content-creating slot; slots are reserved in
# order, so callers wait first come, first served and never wake up to a slot someone else
# took.
_RESERVE = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')  -- one clock for every worker, whatever their own clocks say
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local max_wait, interval = tonumber(ARGV[2]), tonumber(ARGV[4])
local spaced = ARGV[5] == '1' and interval > 0
local longest = interval
for i = 6, #ARGV, 2 do longest = math.max(longest, tonumber(ARGV[i])) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
local count = redis.call('ZCARD', KEYS[1])
local slot = now
if spaced then
  local last = tonumber(redis.call('GET', KEYS[2]))
  if last then slot = math.max(slot, last + interval) end
end
for i = 6, #ARGV, 2 do
  local window, limit = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if count >= limit then
    -- Room for this write once the limit-th latest slot has left the window.
    local nth = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
    slot = math.max(slot, tonumber(nth[2]) + window)
  end
end
local wait = slot - now
if wait > max_wait then
  return {0, tostring(wait)}
end
redis.call('ZADD', KEYS[1], slot, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil((wait + longest) * 1000))
if spaced then
  redis.call('SET', KEYS[2], tostring(slot), 'PX', math.ceil((wait + interval) * 1000))
end
return {1, tostring(wait)}
"""


def content_creating(request: httpx.Request) -> bool:
    """Whether `request` creates content (a POST of a comment, issue, pull request, review,
    release, ...): the writes GitHub's one-second spacing is kept for."""
    return request.method.upper() == "POST" and bool(_CONTENT_PATH.search(request.url.path))


class WriteBudgetExhausted(GitHubException):
    """The installation's write budget has no slot within `MAX_WAIT`; the write was not sent.
    Not retried by `RetryPolicy`; `explain` turns it into a sentence with the retry time."""

    def __init__(self, installation_id: int, retry_after: float) -> None:
        self.installation_id = installation_id
        self.retry_after = retry_after
        super().__init__(
            f"the write budget of installation {installation_id} is spent for the next "
            f"{math.ceil(retry_after)} s"
        )


@dataclass(frozen=True)
class WriteBudget:
    """How many writes one installation may make: per minute, per hour, and the least
    spacing between two content-creating writes. A limit of 0 (or an interval of 0) switches
    that rule off."""

    per_minute: int = 60
    per_hour: int = 450
    interval: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> WriteBudget:
        return cls(
            settings.github_writes_per_minute,
            settings.github_writes_per_hour,
            settings.github_write_interval,
        )

    @property
    def windows(self) -> list[tuple[float, int]]:
        """(seconds, writes allowed in any window that long), for the rules that are on."""
        pairs = [(60.0, self.per_minute), (3600.0, self.per_hour)]
        return [(seconds, limit) for seconds, limit in pairs if limit > 0]

    @property
    def enabled(self) -> bool:
        return self.interval > 0 or bool(self.windows)


class RedisWriteThrottler(BaseThrottler):
    """githubkit's `throttler` for one installation's client: at most `max_concurrency`
    requests in flight from this process, and every write paced by the installation's
    budget, which all workers share through Redis (key `settings.key("gh-writes", id)`).

    `clock` (seconds) replaces the Redis server's clock and `sleep`/`sync_sleep` replace the
    real sleeps; tests inject them to check the waits without spending them.
    """

    def __init__(
        self,
        settings: Settings,
        connection: redis.Redis,
        installation_id: int,
        *,
        max_concurrency: int = MAX_CONCURRENCY,
        max_wait: float = MAX_WAIT,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = anyio.sleep,
        sync_sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.installation_id = installation_id
        self.budget = WriteBudget.from_settings(settings)
        self.key = settings.key("gh-writes", installation_id)
        self.content_key = settings.key("gh-content-write", installation_id)
        self.max_wait = max_wait
        self._local = LocalThrottler(max_concurrency)
        self._script = connection.register_script(_RESERVE)
        self._clock = clock
        self._sleep = sleep
        self._sync_sleep = sync_sleep
        self._warned = threading.Event()

    def reserve(self, *, spaced: bool = True) -> float:
        """Reserve the installation's next write slot; the seconds until it. `spaced`: the
        write creates content, so it keeps the interval after the last one that did. Raises
        `WriteBudgetExhausted` when the slot is further away than `max_wait`."""
        if not self.budget.enabled:
            return 0.0
        args: list[Any] = [
            repr(self._clock()) if self._clock else "",
            repr(self.max_wait),
            secrets.token_hex(8),
            repr(self.budget.interval),
            1 if spaced else 0,
        ]
        for seconds, limit in self.budget.windows:
            args += [repr(seconds), limit]
        try:
            granted, wait = self._script(keys=[self.key, self.content_key], args=args)
        except redis.RedisError as exc:
            # Pacing is courtesy, not correctness: without Redis the write goes out unpaced
            # and GitHub's own limit (with RetryPolicy's Retry-After handling) still applies.
            if not self._warned.is_set():
                self._warned.set()
                log.warning("GitHub write budget unavailable (%s); writes are not paced", exc)
            return 0.0
        seconds = float(wait)
        if not int(granted):
            log.warning(
                "GitHub write budget of installation %s spent for %.0f s; write not sent",
                self.installation_id,
                seconds,
            )
            raise WriteBudgetExhausted(self.installation_id, seconds)
        if seconds > 0:
            log.debug("GitHub write of installation %s waits %.2f s", self.installation_id, seconds)
        return seconds

    @contextmanager
    def acquire(self, request: httpx.Request) -> Generator[None, Any, Any]:
        if request.method.upper() in WRITE_METHODS:
            wait = self.reserve(spaced=content_creating(request))
            if wait > 0:
                self._sync_sleep(wait)
        with self._local.acquire(request):
            yield

    @asynccontextmanager
    async def async_acquire(self, request: httpx.Request) -> AsyncGenerator[None, Any]:
        if request.method.upper() in WRITE_METHODS:
            # The sync Redis client is loop-free (a worker runs each job in a fresh event
            # loop); a thread keeps its round trip off the loop.
            spaced = content_creating(request)
            wait = await anyio.to_thread.run_sync(lambda: self.reserve(spaced=spaced))
            if wait > 0:
                await self._sleep(wait)
        async with self._local.async_acquire(request):
            yield
