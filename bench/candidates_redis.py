"""Ingest candidate, Redis client: the receiver's one round trip (the dedupe-and-enqueue
script, EVALSHA with the RQ job hash: 4 keys, ~50 arguments) through the hand-written
pipelined connection (jobs/pipelined_redis.py) against redis-py's asyncio client with hiredis,
used two ways: as the receiver would use any client (each caller awaits its command; the pool
gives concurrent callers a connection each), and pipelined (the commands of one event-loop
turn sent as one redis-py pipeline, without MULTI), which is what the hand-written client does.

`--callers` tasks (16, as wrk's connections) share one client on uvloop; each call has a
delivery id of its own, so every call queues a job, as under the ingest benchmark. The script
arguments are built before the clock starts: the figures are the client's alone. Variants
alternate over `--rounds`; per variant, the medians of CPU µs per call (this process: the
client's Python and C; Redis is another process) and calls/s, and the paired ratio of CPU
per call to the pipelined client's, round by round.

Flushes the Redis DB of --redis-url (DB 0 refused). Needs only Redis.
Run: `python -m bench.candidates_redis [--calls 20000] [--rounds 5]`
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis
import uvloop
from redis.exceptions import NoScriptError

from app.config import Settings
from app.webhooks import route
from bench.ingest import bench_redis, machine
from jobs.pipelined_redis import PipelinedRedis
from jobs.queue import _DEDUPE_ENQUEUE, _DEDUPE_ENQUEUE_SHA, _script_call, job_id_for, preload
from tests import payloads


class PipelineBatcher:
    """redis-py's asyncio client, pipelined: the commands callers issue in one event-loop turn
    go out as one `pipeline(transaction=False)`; each caller gets its own reply."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.pending: list[tuple[tuple, asyncio.Future]] = []

    async def execute_command(self, *args):
        future = asyncio.get_running_loop().create_future()
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending.append((args, future))
        return await future

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        asyncio.ensure_future(self._send(batch))

    async def _send(self, batch) -> None:
        pipe = self.client.pipeline(transaction=False)
        for args, _ in batch:
            pipe.execute_command(*args)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # every caller of the batch gets the error
            replies = [exc] * len(batch)
        for (_, future), reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def aclose(self) -> None:
        await self.client.aclose()


VARIANTS: dict[str, Callable[[str], object]] = {
    "pipelined (jobs/pipelined_redis.py)": lambda url: PipelinedRedis(url),
    "redis-py asyncio + hiredis, a command per caller": lambda url: aioredis.Redis.from_url(url),
    "redis-py asyncio + hiredis, a pipeline per loop turn": lambda url: PipelineBatcher(
        aioredis.Redis.from_url(url)
    ),
}


def script_calls(settings: Settings, count: int) -> list[list]:
    """`count` EVALSHA commands as the receiver sends them, each for a delivery of its own."""
    commands = []
    for n in range(count):
        body = payloads.issue_comment("/idp plan", number=n % 64 + 1)
        delivery = f"cand-{uuid.uuid4()}"
        trigger = route("issue_comment", delivery, body)
        keys, args = _script_call(settings, trigger, job_id_for(delivery))
        commands.append(["EVALSHA", _DEDUPE_ENQUEUE_SHA, len(keys), *keys, *args])
    return commands


async def drive(client, commands: list[list], callers: int) -> tuple[float, float]:
    """CPU seconds and wall seconds for `commands`, `callers` at a time; checks every reply."""
    await client.execute_command("PING")  # connect before the clock starts
    queue = iter(commands)
    replies: list = []

    async def caller() -> None:
        for command in queue:
            try:
                replies.append(await client.execute_command(*command))
            except NoScriptError:  # a SCRIPT FLUSH elsewhere: as the receiver, EVAL it once
                replies.append(await client.execute_command("EVAL", _DEDUPE_ENQUEUE, *command[2:]))

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await client.aclose()
    if len(replies) != len(commands) or not all(r == 1 for r in replies):
        raise SystemExit(f"unexpected replies: {sorted(set(map(repr, replies)))[:5]}")
    return cpu, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.candidates_redis", description=__doc__)
    parser.add_argument("--calls", type=int, default=20000, help="script calls per run")
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    args = parser.parse_args(argv)
    connection = bench_redis(args.redis_url)
    settings = Settings(
        redis_url=args.redis_url, redis_prefix="idpcand", queue_name="idpcand",
        github_webhook_secret="unused",
    )  # fmt: skip
    print(f"command: python -m bench.candidates_redis {' '.join(argv or sys.argv[1:])}")
    print(f"machine: {machine()}")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for round_no in range(1, args.rounds + 1):
        for name in names if round_no % 2 else reversed(names):
            connection.flushdb()
            preload(connection)
            commands = script_calls(settings, args.calls)
            cpu, wall = uvloop.run(drive(VARIANTS[name](args.redis_url), commands, args.callers))
            results[name].append((cpu / args.calls * 1e6, args.calls / wall))
            print(f"round {round_no}  {name:<54}{cpu / args.calls * 1e6:>7.1f} us CPU/call"
                  f"{args.calls / wall:>9.0f} calls/s", flush=True)  # fmt: skip
    connection.flushdb()
    base = results[names[0]]
    print(f"\nmedians over {args.rounds} rounds, {args.calls} calls, {args.callers} callers:")
    for name, runs in results.items():
        paired = statistics.median(r[0] / b[0] for r, b in zip(runs, base, strict=True))
        print(
            f"{name:<54}{statistics.median(r[0] for r in runs):>7.1f} us CPU/call"
            f"{statistics.median(r[1] for r in runs):>9.0f} calls/s"
            f"   CPU/call vs pipelined, paired: {paired:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
