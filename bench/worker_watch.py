"""Real `idp-copilot worker` processes for bench/workflow.py (`--burst`, or stopped with
SIGTERM when the benchmark says so), watched while they run: memory from /proc, CPU time and
peak RSS from wait4 when they exit, and a time limit.

RQ forks a work horse per job, so a worker's memory is two figures: the worker process that
lives for the whole run, and the horse that runs one workflow (forked from the worker, so its
RSS counts the pages it still shares with it). wait4 returns the rusage of a worker together
with every process it reaped (its horses): its ru_maxrss is the peak RSS of the largest of
them, exactly; /proc samples tell the worker from its horses and add them up.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import descendants

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EVERY = 0.2  # seconds; a workflow's horse lives for about a second or more


@dataclass
class Memory:
    """Peaks in KiB: the worker processes, their children (work horses, and RQ's scheduler,
    a fork of the idle worker: the largest child is the horse), all of them at one instant
    (RSS counts a page shared after fork once per process, PSS splits it between them)."""

    worker_hwm: int = 0
    child_hwm: int = 0
    together_rss: int = 0
    together_pss: int = 0
    largest_process: int = 0  # from wait4: exact, worker or child, whichever was larger


@dataclass
class Watched:
    """What the workers did: exit codes, CPU seconds (workers and horses), memory, and
    whether the time limit stopped them."""

    exit_codes: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0
    memory: Memory = field(default_factory=Memory)
    timed_out: bool = False
    logs: list[Path] = field(default_factory=list)


def _kib(path: str, *names: str) -> list[int]:
    """The KiB figures `names` of a /proc status-like file; zeros when the process ended."""
    try:
        text = Path(path).read_text()
    except OSError:
        return [0] * len(names)
    values = {}
    for line in text.splitlines():
        name, _, amount = line.partition(":")
        if name in names:
            values[name] = int(amount.split()[0])
    return [values.get(name, 0) for name in names]


def _sample(pids: list[int], memory: Memory) -> None:
    rss_sum = pss_sum = 0
    for pid in pids:
        for process in [pid, *descendants(pid)]:
            rss, hwm = _kib(f"/proc/{process}/status", "VmRSS", "VmHWM")
            (pss,) = _kib(f"/proc/{process}/smaps_rollup", "Pss")
            rss_sum, pss_sum = rss_sum + rss, pss_sum + pss
            if process == pid:
                memory.worker_hwm = max(memory.worker_hwm, hwm)
            else:
                memory.child_hwm = max(memory.child_hwm, hwm)
    memory.together_rss = max(memory.together_rss, rss_sum)
    memory.together_pss = max(memory.together_pss, pss_sum)


def worker_command(name: str, profile: Path | None = None, burst: bool = True) -> list[str]:
    """`idp-copilot worker [--burst]`, optionally under `py-spy record` (its subprocesses, the
    work horses, included; raw collapsed stacks, or a flame graph for a .svg file)."""
    command = [sys.executable, "-m", "app.cli", "worker", *(["--burst"] if burst else [])]
    command += ["--name", name]
    if profile is None:
        return command
    spy = Path(sys.executable).with_name("py-spy")
    form = "flamegraph" if profile.suffix == ".svg" else "raw"
    return [str(spy), "record", "--subprocesses", "--format", form, "-o", str(profile), "--"] + (
        command
    )


def run_workers(
    commands: list[list[str]],
    env: dict[str, str],
    folder: Path,
    timeout: float,
    stop: threading.Event | None = None,
) -> Watched:
    """Start one process per command (each in a session of its own, logging to a file in
    `folder`), sample their memory until all have exited, and return what they did. Once
    `stop` is set they get SIGTERM (RQ's warm shutdown); after `timeout` seconds the rest get
    SIGKILL, their horses included."""
    watched = Watched()
    running: dict[int, subprocess.Popen] = {}
    for index, command in enumerate(commands):
        log = folder / f"worker-{index + 1}.log"
        watched.logs.append(log)
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        running[process.pid] = process
    # A profiled worker runs under py-spy, which must outlive it to write its profile: the
    # worker, py-spy's child, gets the SIGTERM, and py-spy ends with it.
    profiled = {p for p, c in zip(running, commands, strict=True) if c[0].endswith("py-spy")}
    deadline = time.monotonic() + timeout
    try:
        while running:
            _sample(list(running), watched.memory)
            _reap(running, watched)
            if stop is not None and stop.is_set():
                stop = None  # once
                for pid in running:
                    for target in _children(pid) if pid in profiled else [pid]:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(target, signal.SIGTERM)
            if running and time.monotonic() > deadline:
                watched.timed_out = True
                for pid in running:
                    kill_session(pid)
                deadline = float("inf")  # reap them on the next rounds
            if running:
                time.sleep(SAMPLE_EVERY)
    finally:  # interrupted: leave no worker behind
        for pid in running:
            kill_session(pid)
    return watched


def _reap(running: dict[int, subprocess.Popen], watched: Watched) -> None:
    for pid, process in list(running.items()):
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            process.returncode = os.waitstatus_to_exitcode(status)
            watched.exit_codes.append(process.returncode)
            watched.cpu_seconds += usage.ru_utime + usage.ru_stime
            memory = watched.memory
            memory.largest_process = max(memory.largest_process, usage.ru_maxrss)
            del running[pid]


def _children(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent:
            children.append(int(stat.parent.name))
    return children


def kill_session(leader: int) -> None:
    """SIGKILL to every process of the session `leader` started: the worker, its scheduler
    and its horse (RQ gives the horse a process group of its own, but not a session)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            session = int(stat.read_text().rsplit(")", 1)[1].split()[3])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        if session == leader:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(stat.parent.name), signal.SIGKILL)


def own_cpu_seconds() -> float:
    """CPU time of this process, every thread included (the GitHub stand-in runs here)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent busy since boot (/proc/stat, all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
