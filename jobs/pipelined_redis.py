"""One asyncio connection to Redis that pipelines the commands of concurrent callers, for the
webhook receiver's one round trip per delivery.

redis-py's asyncio client spends ~80 us of CPU on one EVALSHA with the job hash's 50
arguments (pure-Python packing, a pooled connection per concurrent caller, retry and
observability layers); this connection spends ~15 us (bench/RESULTS.md). Callers write
their command and wait for its reply; Redis answers in order, so replies are matched to
callers first in, first out. The commands of the deliveries handled in one event-loop turn
leave in one write. hiredis (redis-py's C parser) packs the commands and parses the replies.

Plain `redis://` and `unix://` URLs only (host, port, db, username, password);
`app.web.enqueue_connection` uses redis-py's asyncio client for anything else (TLS, options).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import hiredis
import redis
from redis._parsers.base import BaseParser
from redis.connection import UnixDomainSocketConnection, parse_url

_URL_KEYS = frozenset({"host", "port", "db", "username", "password", "path"})


def supports(url: str) -> bool:
    """True when `url` needs nothing but what `PipelinedRedis` does."""
    try:
        options = parse_url(url)
    except ValueError:
        return False
    unix = options.pop("connection_class", None)
    return (unix is None or unix is UnixDomainSocketConnection) and set(options) <= _URL_KEYS


def _error(reply: hiredis.ReplyError) -> redis.RedisError:
    """redis-py's own exception for an error reply, with its class and message (NOSCRIPT:
    `NoScriptError`, on which the enqueue falls back to EVAL)."""
    return BaseParser.parse_error(str(reply))


class _Pipe(asyncio.Protocol):
    """The connection's state: replies owed, in the order the commands were written."""

    def __init__(self, reply_timeout: float) -> None:
        self.reply_timeout = reply_timeout
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self._reader = hiredis.Reader()
        self._owed: collections.deque[tuple[asyncio.Future, float]] = collections.deque()
        self._outbox: list[bytes] = []
        self._watchdog: asyncio.TimerHandle | None = None

    @property
    def open(self) -> bool:
        return self.transport is not None and self.lost is None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.fail(redis.ConnectionError(f"Redis closed the connection ({exc or 'normally'})"))

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                future = self._owed.popleft()[0]
                if not future.done():  # its caller may have been cancelled
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:  # a reply nobody asked for
            self.fail(redis.ConnectionError(f"unreadable Redis reply: {exc}"))

    def send(self, *args: Any) -> asyncio.Future:
        """Queue one command; the future gets its reply (a hiredis.ReplyError for an error)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._owed.append((future, loop.time() + self.reply_timeout))
        if not self._outbox:
            loop.call_soon(self._flush)
        self._outbox.append(hiredis.pack_command(args))
        if self._watchdog is None:
            self._watchdog = loop.call_later(self.reply_timeout, self._check_timeout)
        return future

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        if self.open and outbox:
            self.transport.write(b"".join(outbox))  # type: ignore[union-attr]

    def _check_timeout(self) -> None:
        self._watchdog = None
        if not self._owed:
            return
        loop = asyncio.get_running_loop()
        left = self._owed[0][1] - loop.time()
        if left <= 0:
            # A reply that late means the connection (or Redis) is stuck: drop it; the next
            # command connects again.
            self.fail(redis.TimeoutError(f"no reply from Redis within {self.reply_timeout} s"))
        else:
            self._watchdog = loop.call_later(left, self._check_timeout)

    def fail(self, error: Exception) -> None:
        """Drop the connection; every reply still owed raises the first error that did."""
        if self.lost is None:
            self.lost = error
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
        while self._owed:
            future = self._owed.popleft()[0]
            if not future.done():
                future.set_exception(self.lost)
        self._outbox.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None


class PipelinedRedis:
    """A Redis client for one event loop with one method: `execute_command`. Connects on
    first use and again after the connection is lost or a reply times out; a command whose
    connection was lost is sent once more. Errors are redis-py's (`ConnectionError`,
    `TimeoutError`, `ResponseError`, `NoScriptError`)."""

    def __init__(self, url: str, *, connect_timeout: float = 2, reply_timeout: float = 5) -> None:
        if not supports(url):
            raise ValueError("PipelinedRedis takes redis:// and unix:// URLs without options")
        options = parse_url(url)
        self.path: str | None = options.get("path")
        self.host: str = options.get("host", "localhost")
        self.port: int = int(options.get("port", 6379))
        self.db = int(options.get("db", 0))
        password, username = options.get("password"), options.get("username")
        self._auth = ([username] if username else []) + [password] if password else []
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout
        self._pipe: _Pipe | None = None
        self._lock = asyncio.Lock()
        self._attempts = 0  # connection attempts finished
        self._failure: redis.ConnectionError | None = None

    async def execute_command(self, *args: Any) -> Any:
        """Send one command and return its reply (bytes, int, list or None)."""
        pipe = self._pipe
        if pipe is None or not pipe.open:
            reply = await (await self._connected()).send(*args)
        else:
            try:
                reply = await pipe.send(*args)
            except redis.ConnectionError:
                # The connection was lost since its last command (Redis restarted, a proxy
                # dropped it): once more on a new one, as redis-py retries. The receiver's
                # commands are idempotent (the enqueue dedupes on the delivery id).
                reply = await (await self._connected()).send(*args)
        if isinstance(reply, hiredis.ReplyError):
            raise _error(reply)
        return reply

    async def _connected(self) -> _Pipe:
        finished = self._attempts
        async with self._lock:  # one connection attempt at a time
            if self._pipe is not None and self._pipe.open:
                return self._pipe
            if self._attempts != finished and self._failure is not None:
                # An attempt ended in failure while this caller waited: fail as it did rather
                # than queue one more (with Redis unreachable, each costs the connect timeout).
                raise redis.ConnectionError(str(self._failure))
            try:
                self._pipe = await self._connect()
            except redis.ConnectionError as exc:
                self._failure = exc
                raise
            finally:
                self._attempts += 1
            self._failure = None
            return self._pipe

    async def _connect(self) -> _Pipe:
        loop = asyncio.get_running_loop()
        where = self.path or f"{self.host}:{self.port}"
        pipe: _Pipe | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.path:
                    _, pipe = await loop.create_unix_connection(self._new_pipe, self.path)
                else:
                    _, pipe = await loop.create_connection(self._new_pipe, self.host, self.port)
                handshake = [pipe.send("AUTH", *self._auth)] if self._auth else []
                if self.db:
                    handshake.append(pipe.send("SELECT", self.db))
                replies = await asyncio.gather(*handshake)
        except OSError as exc:  # refused, unreachable, or the time limit (TimeoutError)
            if pipe is not None:
                pipe.fail(redis.ConnectionError("connection set-up failed"))
            raise redis.ConnectionError(f"cannot connect to Redis at {where}: {exc!r}") from None
        refused = [reply for reply in replies if isinstance(reply, hiredis.ReplyError)]
        if refused:
            pipe.fail(redis.ConnectionError("connection set-up failed"))
            raise redis.ConnectionError(f"Redis at {where} refused AUTH or SELECT: {refused[0]}")
        return pipe

    def _new_pipe(self) -> _Pipe:
        return _Pipe(self.reply_timeout)

    async def aclose(self) -> None:
        """Close the connection; commands still waiting fail with ConnectionError."""
        if self._pipe is not None:
            self._pipe.fail(redis.ConnectionError("connection closed by the App"))
            self._pipe = None
