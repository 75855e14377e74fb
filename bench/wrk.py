"""Driving wrk for the ingest benchmark: the pre-signed bodies it cycles through, one run of
a fixed number of requests against one server, and the figures of that run.

wrk cannot compute an HMAC, so the bodies are signed here and bench/ingest.lua only adds a
delivery id of its own to each request.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests import payloads

LUA_SCRIPT = Path(__file__).with_name("ingest.lua")
_RESULT_LINE = re.compile(r"^INGEST-BENCH (.*)$", re.MULTILINE)


class BenchError(Exception):
    """The benchmark cannot run or its figures cannot be trusted; the message says why."""


@dataclass(frozen=True)
class Load:
    """How wrk loads a server: connections, the time limit of one run, and the CPU wrk is
    pinned to (None: not pinned)."""

    connections: int
    max_seconds: int
    cpu: int | None = None


@dataclass
class Run:
    """One wrk run against one server (or the medians of several)."""

    target: str
    quota: int
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    socket_errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_cpu: float = 0.0  # share of one core the server used during the run
    wrk_cpu: float = 0.0
    # Cores busy with anything else (Redis included) during the run: other work on a shared
    # machine moves every figure.
    others_cpu: float = 0.0
    # The server's CPU time per request: what requests/s would be the inverse of if the
    # server had its core to itself.
    server_cpu_us: float = 0.0


def write_bodies(path: Path, secret: str, count: int = 64, first: int = 1) -> None:
    """`count` distinct `/idp plan` comments (issue numbers `first`, `first + 1`, …), each
    with its signature, one `signature<TAB>body` line each: what the wrk script cycles
    through. The receiver dedupes signed bodies too, so a run needs one body per request."""
    lines = []
    for number in range(first, first + count):
        body = payloads.encode(payloads.issue_comment("/idp plan", number=number))
        lines.append(f"{payloads.sign(body, secret)}\t{body.decode()}")
    path.write_text("\n".join(lines) + "\n")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    """CPU time all CPUs spent busy since boot (every /proc/stat field but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk_command(load: Load, url: str, bodies: Path, quota: int) -> list[str]:
    """The wrk command line of one run (one wrk thread: bench/ingest.lua counts per thread)."""
    prefix = str(uuid.uuid4())[:23]  # a fresh UUID head per run: ids never repeat across runs
    pin = [] if load.cpu is None else ["taskset", "-c", str(load.cpu)]
    limits = [f"-c{load.connections}", f"-d{load.max_seconds}s", "--timeout", "10s"]
    script = ["-s", str(LUA_SCRIPT), url, "--", str(bodies), prefix, str(quota)]
    return [*pin, "wrk", "-t1", *limits, *script]


def run_wrk(load: Load, target: str, url: str, server_pid: int, bodies: Path, quota: int) -> Run:
    """One wrk run of exactly `quota` requests (fewer only if the time limit hits first)."""
    command = wrk_command(load, url, bodies, quota)
    server_before, wrk_before = cpu_seconds(server_pid), _children_cpu_seconds()
    busy_before, started = _machine_busy_seconds(), time.monotonic()
    timeout = load.max_seconds + 30
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - started
    busy = _machine_busy_seconds() - busy_before
    server_cpu = cpu_seconds(server_pid) - server_before
    wrk_cpu = _children_cpu_seconds() - wrk_before
    match = _RESULT_LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise BenchError(f"wrk failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    values = dict(item.split("=", 1) for item in match.group(1).split())
    pairs = (s.split(":") for s in values["statuses"].split(",") if s)
    requests = int(values["requests"])
    return Run(
        target=target,
        quota=quota,
        requests=requests,
        rps=requests / (int(values["duration_us"]) / 1e6),
        p50_ms=int(values["p50_us"]) / 1000,
        p95_ms=int(values["p95_us"]) / 1000,
        p99_ms=int(values["p99_us"]) / 1000,
        socket_errors=int(values["socket_errors"]),
        statuses={int(code): int(n) for code, n in pairs},
        server_cpu=server_cpu / wall,
        wrk_cpu=wrk_cpu / wall,
        others_cpu=max(busy - server_cpu - wrk_cpu, 0.0) / wall,
        server_cpu_us=server_cpu / max(requests, 1) * 1e6,
    )


def median_run(runs: list[Run]) -> Run:
    """Per-figure medians over the measured rounds of one target."""

    def median(name: str) -> float:
        return statistics.median(getattr(run, name) for run in runs)

    return Run(
        target=runs[0].target,
        quota=runs[0].quota,
        requests=round(median("requests")),
        **{name: median(name) for name in ("rps", "p50_ms", "p95_ms", "p99_ms")},
        **{name: median(name) for name in ("server_cpu", "wrk_cpu", "others_cpu")},
        server_cpu_us=median("server_cpu_us"),
    )


HEADER = (
    f"{'round':<8}{'target':<7}{'requests/s':>11}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    f"{'CPU us':>8}{'server':>8}{'wrk':>6}{'others':>8}  statuses"
)


def row(label: str, run: Run) -> str:
    """One line of the table under HEADER."""
    codes = " ".join(f"{code}x{n}" for code, n in sorted(run.statuses.items()))
    figures = f"{run.rps:>11.0f}{run.p50_ms:>9.2f}{run.p95_ms:>9.2f}{run.p99_ms:>9.2f}"
    cpu = f"{run.server_cpu_us:>8.0f}{run.server_cpu:>8.0%}{run.wrk_cpu:>6.0%}"
    cpu += f"{run.others_cpu:>8.0%}"
    return f"{label:<8}{run.target:<7}{figures}{cpu}  {codes}"
