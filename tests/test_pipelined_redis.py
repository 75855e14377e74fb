"""The receiver's pipelined Redis connection: replies reach the right caller, and a lost,
stuck or unreachable Redis gives redis-py's errors (the receiver answers 503) instead of
wrong answers, then recovers."""

from __future__ import annotations

import asyncio

import pytest
import redis

from jobs.pipelined_redis import PipelinedRedis, supports
from tests.conftest import TEST_REDIS_URL

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_callers_each_get_their_own_reply(redis_conn):
    async def main():
        client = PipelinedRedis(TEST_REDIS_URL)
        try:
            return await asyncio.gather(
                *(client.execute_command("ECHO", f"caller-{n}") for n in range(200))
            )
        finally:
            await client.aclose()

    assert run(main()) == [f"caller-{n}".encode() for n in range(200)]


def test_commands_go_to_the_database_the_url_names(redis_conn):
    async def main():
        client = PipelinedRedis(TEST_REDIS_URL)
        try:
            await client.execute_command("SET", "pipelined-key", "written")
        finally:
            await client.aclose()

    run(main())
    assert redis_conn.get("pipelined-key") == b"written"  # redis_conn uses the same DB


def test_an_error_reply_raises_for_its_caller_only(redis_conn):
    async def main():
        client = PipelinedRedis(TEST_REDIS_URL)
        try:
            return await asyncio.gather(
                client.execute_command("INCR", "n"),
                client.execute_command("NOSUCHCOMMAND"),
                client.execute_command("EVALSHA", "0" * 40, 0),
                client.execute_command("INCR", "n"),
                return_exceptions=True,
            )
        finally:
            await client.aclose()

    first, unknown, noscript, last = run(main())
    assert (first, last) == (1, 2)
    assert type(unknown) is redis.ResponseError
    assert isinstance(noscript, redis.exceptions.NoScriptError)


def test_a_connection_redis_closed_is_replaced_without_failing_the_next_command(redis_conn):
    async def main():
        client = PipelinedRedis(TEST_REDIS_URL)
        try:
            first_id = await client.execute_command("CLIENT", "ID")
            # Closed from outside (a Redis restart, a proxy's idle timeout); the loop has not
            # noticed yet when the next command goes out on the dead connection.
            assert redis_conn.client_kill_filter(_id=first_id) == 1
            echoed = await client.execute_command("ECHO", "back")
            return first_id, echoed, await client.execute_command("CLIENT", "ID")
        finally:
            await client.aclose()

    first_id, echoed, second_id = run(main())
    assert echoed == b"back"
    assert second_id != first_id


def test_a_stuck_reply_times_out_and_the_connection_recovers(redis_conn):
    async def main():
        client = PipelinedRedis(TEST_REDIS_URL, reply_timeout=0.2)
        try:
            with pytest.raises(redis.TimeoutError):
                await client.execute_command("BLPOP", "never-filled", 2)
            return await client.execute_command("ECHO", "fresh")
        finally:
            await client.aclose()

    assert run(main()) == b"fresh"


def test_unreachable_redis_raises_connection_error():
    async def main():
        client = PipelinedRedis(CLOSED_PORT_REDIS)
        await client.execute_command("PING")

    with pytest.raises(redis.ConnectionError, match="cannot connect to Redis at 127.0.0.1:1"):
        run(main())


def test_callers_waiting_on_a_failed_connection_attempt_fail_with_it(monkeypatch):
    attempts = []

    async def main():
        client = PipelinedRedis(CLOSED_PORT_REDIS)
        connect = client._connect

        async def counted():
            attempts.append(1)
            return await connect()

        monkeypatch.setattr(client, "_connect", counted)
        return await asyncio.gather(
            *(client.execute_command("PING") for _ in range(16)), return_exceptions=True
        )

    errors = run(main())
    assert all(isinstance(error, redis.ConnectionError) for error in errors)
    assert len(attempts) == 1  # not one connect timeout per waiting delivery


def test_a_refused_password_is_a_connection_error(redis_conn):
    url = TEST_REDIS_URL.replace("redis://", "redis://:not-the-password@", 1)

    async def main():
        await PipelinedRedis(url).execute_command("PING")

    with pytest.raises(redis.ConnectionError, match="refused AUTH or SELECT"):
        run(main())


@pytest.mark.parametrize(
    ("url", "taken"),
    [
        ("redis://localhost:6379/3", True),
        ("redis://user:secret@redis.internal/0", True),
        ("unix:///run/redis.sock?db=2", True),
        ("rediss://redis.example:6380/0", False),
        ("redis://localhost/0?socket_timeout=3", False),
    ],
)
def test_urls_with_tls_or_options_are_left_to_redis_py(url, taken):
    assert supports(url) is taken


# Commands as the receiver sends them, and the reply shapes around them: each goes through
# the pipelined connection and through redis-py's asyncio client (the library it replaces
# on the hot path), and the replies and errors must be the same.
SCRIPT = "redis.call('SET', KEYS[1], ARGV[1]); return {ARGV[1], redis.call('INCR', KEYS[2])}"
SAME_AS_REDIS_PY = [
    ("SET", "cmp:a", "1"),
    ("GET", "cmp:a"),
    ("GET", "cmp:missing"),
    ("INCR", "cmp:n"),
    ("HSET", "cmp:h", "x", "1", "y", b"\x00\xffbytes"),
    ("HMGET", "cmp:h", "x", "y", "z"),
    ("LPUSH", "cmp:l", "a", "b"),
    ("LRANGE", "cmp:l", 0, -1),
    ("EVAL", SCRIPT, 2, "cmp:s", "cmp:n", "v"),
    ("SCRIPT", "LOAD", SCRIPT),
    ("EVALSHA", "0" * 40, 0),  # NOSCRIPT
    ("INCR", "cmp:a:h"),
    ("HGET", "cmp:h", "x"),
    ("INCR", "cmp:h"),  # WRONGTYPE
    ("ECHO", "é ünïcode"),
    ("PING",),
]


def test_replies_and_errors_are_redis_pys_for_the_same_commands(redis_conn):
    import redis.asyncio as aioredis

    async def through(client) -> list:
        redis_conn.delete(*redis_conn.keys("cmp:*") or ["cmp:none"])
        replies = []
        for command in SAME_AS_REDIS_PY:
            try:
                replies.append(await client.execute_command(*command))
            except redis.RedisError as exc:
                replies.append((type(exc).__name__, str(exc)))
        await client.aclose()
        return replies

    ours = run(through(PipelinedRedis(TEST_REDIS_URL)))
    library_client = aioredis.Redis.from_url(TEST_REDIS_URL)
    # The receiver reads raw replies: without redis-py's conversions (SET → True, …).
    library_client.response_callbacks.clear()
    library = run(through(library_client))

    assert ours == library
    assert ("NoScriptError", "No matching script. Please use EVAL.") in ours
    assert ours[13][0] == "ResponseError" and "WRONGTYPE" in ours[13][1]
