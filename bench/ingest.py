"""Ingest benchmark: how many signed deliveries per second `idp-copilot serve` takes in, next
to Probot 14 verifying each delivery and pushing it to Redis (bench/probot/, from npm) and a
bare Starlette endpoint on the same uvicorn stack as serve (bench/bare_app.py).

The servers run as one process each on loopback for the whole run; wrk (Debian package
`wrk`) drives them in alternating rounds (bare, serve, probot, then probot, serve, bare, ...)
so drift on the machine hits them alike, and each round's ratios compare runs seconds apart
(the paired ratios: the median of per-round ratios). Every request is a signed
`issue_comment` carrying `/idp plan` with a delivery id of its own, so every one the App
accepts is a new RQ job and every one Probot accepts a new entry in its Redis list. Each
wrk run stops after a fixed number of responses (or its time limit). Figures are the medians
over rounds; the ratios serve/probot and serve/bare are the headline.

The Redis DB given by --redis-url is flushed before the run (and after it, unless
--keep-queue): give the benchmark a DB of its own.

Run: `python -m bench.ingest [--requests N] [--connections 16] [--no-probot]`
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from app.web import WEBHOOK_PATH
from bench import probot_peer
from bench.ingest_report import report
from bench.wrk import (
    HEADER,
    BenchError,
    Load,
    Run,
    row,
    run_wrk,
    write_bodies,
    wrk_command,
)

ROOT = Path(__file__).resolve().parents[1]
PREFIX = QUEUE = "idpbench"


@dataclass
class Server:
    name: str
    command: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)  # on top of the benchmark's
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(server: Server, env: dict[str, str], log_path: Path) -> None:
    """Start the server and wait until it accepts connections (uvicorn listens only after
    its start-up, so the App's Redis script is loaded by then)."""
    with log_path.open("wb") as log:
        server.process = subprocess.Popen(
            server.command,
            cwd=ROOT,
            env={**env, **server.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60  # Probot takes ~5 s on a busy machine
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise BenchError(f"{server.name} exited at start-up:\n{tail}")
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{server.name} did not listen on port {server.port} within 60 s")


def stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def bench_redis(url: str) -> redis.Redis:
    connection = redis.Redis.from_url(url)
    if int(connection.connection_pool.connection_kwargs.get("db", 0)) == 0:
        raise BenchError(f"{url} is DB 0; the benchmark flushes its DB: give it one of its own")
    try:
        connection.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {url} does not answer ({type(exc).__name__})") from None
    return connection


def machine() -> str:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = names[0] if names else model
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory:.0f} GiB, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=20000, help="requests per measured run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per server")
    parser.add_argument("--warmup", type=int, default=2000, help="requests per server first")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--max-seconds", type=int, default=120, help="time limit of one run")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="servers on CPU 0, wrk on CPU 1 (default: with 2+ CPUs and taskset)",
    )
    parser.add_argument(
        "--probot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the Probot peer too (needs Node.js 20+ and npm; installs bench/probot)",
    )
    parser.add_argument("--keep-queue", action="store_true", help="leave the jobs in Redis")
    parser.add_argument(
        "--profile", metavar="SVG", help="py-spy flame graph of serve's measured runs"
    )
    args = parser.parse_args(argv)
    if args.pin is None:
        args.pin = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    if min(args.requests, args.rounds, args.connections, args.max_seconds) < 1:
        parser.error("--requests, --rounds, --connections and --max-seconds must be positive")
    if args.warmup < 0:
        parser.error("--warmup cannot be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        return bench(args, argv)
    except BenchError as exc:
        print(f"bench.ingest: {exc}", file=sys.stderr)
        return 2


def servers_for(args: argparse.Namespace, secret: str) -> dict[str, Server]:
    """The servers in the order of the odd rounds (bare, serve, probot)."""
    console_script = Path(sys.executable).with_name("idp-copilot")
    serve = [str(console_script)] if console_script.exists() else [sys.executable, "-m", "app.cli"]
    pin = ["taskset", "-c", "0"] if args.pin else []
    servers = {}
    for name, command in {
        "bare": [sys.executable, "-m", "bench.bare_app"],
        "serve": [*serve, "serve"],
    }.items():
        port = free_port()
        where = ["--host", "127.0.0.1", "--port", str(port)]
        servers[name] = Server(name, [*pin, *command, *where], port)
    if args.probot:
        port = free_port()
        env = probot_peer.environment(secret, args.redis_url)
        command = [*pin, *probot_peer.command("127.0.0.1", port)]
        servers["probot"] = Server("probot", command, port, env)
    return servers


def profiler(args: argparse.Namespace, server: Server) -> subprocess.Popen | None:
    if not args.profile:
        return None
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise BenchError("--profile needs py-spy: pip install py-spy")
    assert server.process is not None
    # --gil: samples of the thread holding the GIL, i.e. where the Python CPU goes.
    command = [py_spy, "record", "--gil", "-r", "200", "-o", args.profile]
    command += ["-p", str(server.process.pid)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def drive(
    args: argparse.Namespace,
    servers: dict[str, Server],
    load: Load,
    bodies: Callable[[int], Path],
) -> tuple[list[Run], dict[str, list[Run]]]:
    """A warm-up per server, then the measured rounds in alternating order; every run.
    `bodies(quota)` writes the signed bodies of one run (each request its own body)."""

    def run(label: str, name: str, quota: int) -> Run:
        process = servers[name].process
        assert process is not None
        done = run_wrk(load, name, servers[name].url, process.pid, bodies(quota), quota)
        print(row(label, done))
        return done

    order = list(servers)
    runs = [run("warm-up", name, args.warmup) for name in order if args.warmup]
    measured: dict[str, list[Run]] = {name: [] for name in order}
    spy = profiler(args, servers["serve"])
    try:
        for round_no in range(1, args.rounds + 1):
            for name in order if round_no % 2 else reversed(order):
                measured[name].append(run(str(round_no), name, args.requests))
    finally:
        stop(spy, signal.SIGINT)  # py-spy writes its output on SIGINT
    return runs + [r for name in order for r in measured[name]], measured


def bench(args: argparse.Namespace, argv: list[str]) -> int:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: apt-get install -y wrk")
    if args.probot:
        probot_peer.ensure_installed()
    connection = bench_redis(args.redis_url)
    connection.flushdb()
    secret = secrets.token_hex(16)
    env = {
        **os.environ,
        "GITHUB_WEBHOOK_SECRET": secret,
        "REDIS_URL": args.redis_url,
        "IDP_REDIS_PREFIX": PREFIX,
        "IDP_QUEUE": QUEUE,
    }
    servers = servers_for(args, secret)
    load = Load(args.connections, args.max_seconds, cpu=1 if args.pin else None)
    print(f"command: {shlex.join(['python', '-m', 'bench.ingest', *argv])}")
    print(f"machine: {machine()}")
    # Other work on the machine moves every figure: say how busy it was.
    print(f"load average (1 min) before the run: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="idp-bench-") as tmp:
        runs_so_far = itertools.count()
        first_number = [1]

        def bodies(quota: int) -> Path:
            path = Path(tmp) / f"bodies-{next(runs_so_far)}.tsv"
            write_bodies(path, secret, quota, first_number[0])
            first_number[0] += quota
            return path

        try:
            for server in servers.values():
                start(server, env, Path(tmp) / f"{server.name}.log")
                print(f"{server.name} server: {shlex.join(server.command)}")
            sample = Path(tmp) / "bodies-N.tsv"
            example = wrk_command(load, servers["serve"].url, sample, args.requests)
            print(f"load generator: {shlex.join(example)}")
            print(
                "\nCPU us: server CPU time per request; server, wrk: share of one core used;"
                "\nothers: cores busy with anything else (other work on the machine, Redis)"
            )
            print(HEADER)
            runs, measured = drive(args, servers, load, bodies)
        finally:
            for server in servers.values():
                stop(server.process)
    return report(args, runs, measured, connection, QUEUE)


if __name__ == "__main__":
    sys.exit(main())
