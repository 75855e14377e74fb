"""Ingest candidate, ASGI server: `idp-copilot serve`'s app (bench/serve_factory.py) behind
uvicorn with httptools (serve's stack today) against granian (a Rust HTTP core), driven by wrk
exactly as bench/ingest.py drives serve: 1 thread, 16 connections, the signed `/idp plan`
comments with a delivery id each, rounds in alternating order, each server pinned to CPU 0
and wrk to CPU 1. Figures per server: medians of requests/s, latency and CPU µs per request
(granian: its worker process, where the app runs; its supervisor idles), and the ratio
granian/uvicorn three ways (of the medians, paired per round, by CPU per request).

Flushes the Redis DB of --redis-url before and after (DB 0 refused). Needs wrk and
`pip install -e '.[bench]'` (granian).
Run: `python -m bench.candidates_http [--requests 20000] [--rounds 3]`
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.ingest import PREFIX, QUEUE, Server, bench_redis, free_port, machine, start, stop
from bench.ingest_report import ratios
from bench.wrk import HEADER, BenchError, Load, median_run, row, run_wrk, write_bodies
from tests.processes import descendants


def worker_pid(server: Server) -> int:
    """The process that runs the app: uvicorn's own, granian's one worker."""
    assert server.process is not None
    if server.name != "granian":
        return server.process.pid
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # taskset execs the server; granian's worker is a child process of it.
        found = [p for p in descendants(server.process.pid)]
        if found:
            return found[-1]
        time.sleep(0.1)
    raise BenchError("granian started no worker process")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.candidates_http", description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench.candidates_http: wrk is not installed: apt-get install -y wrk")
        return 2
    connection = bench_redis(args.redis_url)
    connection.flushdb()
    secret = secrets.token_hex(16)
    env = {
        **os.environ, "GITHUB_WEBHOOK_SECRET": secret, "REDIS_URL": args.redis_url,
        "IDP_REDIS_PREFIX": PREFIX, "IDP_QUEUE": QUEUE,
    }  # fmt: skip
    servers = {}
    for name in ("uvicorn", "granian"):
        port = free_port()
        command = ["taskset", "-c", "0", sys.executable, "-m", "bench.serve_factory", name]
        servers[name] = Server(name, [*command, "--host", "127.0.0.1", "--port", str(port)], port)
    load = Load(args.connections, 120, cpu=1)
    print(f"command: {shlex.join(['python', '-m', 'bench.candidates_http', *argv])}")
    print(f"machine: {machine()}")
    measured: dict[str, list] = {name: [] for name in servers}
    with tempfile.TemporaryDirectory(prefix="idp-cand-") as tmp:
        bodies = Path(tmp) / "bodies.tsv"
        write_bodies(bodies, secret)
        try:
            for server in servers.values():
                start(server, env, Path(tmp) / f"{server.name}.log")
                print(f"{server.name}: {shlex.join(server.command)}")
            pids = {name: worker_pid(server) for name, server in servers.items()}
            print(HEADER)
            order = list(servers)
            for name in order:
                print(row("warm-up", run_wrk(load, name, servers[name].url, pids[name],
                                             bodies, args.warmup)))  # fmt: skip
            for round_no in range(1, args.rounds + 1):
                for name in order if round_no % 2 else reversed(order):
                    done = run_wrk(load, name, servers[name].url, pids[name], bodies, args.requests)
                    measured[name].append(done)
                    print(row(str(round_no), done), flush=True)
        finally:
            for server in servers.values():
                stop(server.process)
    connection.flushdb()
    print(f"\nmedian over {args.rounds} round(s), {args.requests} requests each:")
    for name, runs in measured.items():
        m = median_run(runs)
        print(f"{name + ':':<9}{m.rps:.0f} requests/s, p50 {m.p50_ms:.2f} ms, p99 "
              f"{m.p99_ms:.2f} ms, CPU {m.server_cpu_us:.0f} us/request")  # fmt: skip
    of_medians, paired, by_cpu = ratios(measured["granian"], measured["uvicorn"])
    print(f"ratio granian/uvicorn: {of_medians:.2f} (paired: {paired:.2f}; by CPU per "
          f"request, uvicorn/granian: {by_cpu:.2f})")  # fmt: skip
    p99 = statistics.median(r.p99_ms for r in measured["granian"])
    print(f"granian p99 (median of rounds): {p99:.2f} ms")
    bad = [r for runs in measured.values() for r in runs if set(r.statuses) != {202}]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
