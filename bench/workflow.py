"""Workflow benchmark: N create-service workflows through real Redis and real `idp-copilot
worker --burst` processes, GitHub answered at zero latency by the stand-in on loopback.

Each workflow is `/idp create-service svc-K --lang python` commented on issue #K by a user
with write permission, queued with `jobs.queue.enqueue_trigger` as the receiver queues it;
all N are queued at once (a burst), then the workers start and drain the queue. Figures:
workflows per second, GitHub calls per workflow by method (the stand-in's record) and writes
per workflow (the workers' request log, which names the job of every call), LLM calls per
workflow (0 with the `rules` provider: counted, not assumed), p50/p95 end to end (RQ's
enqueued_at → ended_at) and run time (started_at → ended_at), worker RSS and CPU. Every
workflow must finish with one todo comment and one pull request; exit status 1 otherwise.

`--scaling` runs 1 and then 2 workers on the same burst and prints the ratio.
`--github-latency-ms MS` makes the stand-in answer every request after MS milliseconds;
`--one-at-a-time` queues the next workflow only when the last one finished, to workers already
running, so webhook → first comment and webhook → pull request are what one user waits for
(in a burst they are mostly the wait in the queue).
The Redis DB of --redis-url is flushed before each run and after it: give it a DB of its own.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from rq.job import Job, JobStatus

from app.domain.todo import marker
from bench.ingest import bench_redis, machine
from bench.worker_watch import (
    Watched,
    machine_busy_seconds,
    own_cpu_seconds,
    run_workers,
    worker_command,
)
from bench.workflow_arrivals import OneAtATime, enqueue_burst
from bench.workflow_latency import SlowGitHub, milestones
from bench.workflow_report import Figures, percentile, report
from bench.wrk import BenchError
from tests import payloads
from tests.github_standin import GitHubStandIn
from tests.processes import app_environment, settings_of
from tools.builtin.publish import branch_for

TRAP = "/llm-trap"  # the path under the stand-in that OPENAI_BASE_URL points at
HTTP_LINE = re.compile(r'^HTTP Request: (\w+) (\S+) "HTTP/[\d.]+ (\d+)')


def logged_requests(logs: list[Path]) -> list[tuple[str | None, str, str]]:
    """(job id, method, url) of every HTTP request the workers logged (httpx logs each)."""
    found = []
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            hit = HTTP_LINE.match(str(record.get("message", "")))
            if hit:
                found.append((record.get("job_id"), hit.group(1), hit.group(2)))
    return found


def app_counters(metrics: Path) -> dict[str, float]:
    """The workers' own Prometheus counters (multiprocess files), summed by sample name."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics))
    totals: Counter[str] = Counter()
    for family in registry.collect():
        for sample in family.samples:
            totals[sample.name] += sample.value
    return dict(totals)


def check_outcome(standin: GitHubStandIn, jobs: dict[str, int], fetched: list[Job | None]):
    """What went wrong, workflow by workflow: a job that did not finish, or anything but
    exactly one todo comment and one pull request (holding svc-K's files) for issue #K."""
    github, problems, records = standin.github, [], []
    for job_id, job in zip(jobs, fetched, strict=True):
        k = jobs[job_id]
        session = f"{payloads.REPO}#{k}"
        todos = [c for c in github.comments.values() if marker(session) in c["body"]]
        pulls = [n for n, p in github.pulls.items() if p["branch"] == branch_for(session)]
        status = job.get_status(refresh=False) if job else None
        record = {"issue": k, "status": status.value if status else "gone"}
        record |= {"todo_comments": len(todos), "pull_requests": pulls}
        if status != JobStatus.FINISHED:
            problems.append(f"#{k}: job {record['status']}")
        if len(todos) != 1 or len(pulls) != 1:
            problems.append(f"#{k}: {len(todos)} todo comments, {len(pulls)} pull requests")
        elif not any(f"svc-{k}" in path for path in github.files(branch_for(session))):
            problems.append(f"#{k}: the pull request holds no file of svc-{k}")
        records.append(record)
    if len(github.pulls) != len(jobs):
        problems.append(f"{len(github.pulls)} pull requests for {len(jobs)} workflows")
    return problems + [f"unmatched GitHub request: {u}" for u in standin.unmatched], records


def run_burst(count: int, workers: int, args: argparse.Namespace) -> Figures:
    """One run: a fresh stand-in and Redis DB, `count` workflows, `workers` processes."""
    redis_url, timeout, profile = args.redis_url, args.timeout, args.profile
    connection = bench_redis(redis_url)
    connection.flushdb()
    owner, name = payloads.REPO.split("/")
    latency = args.github_latency_ms / 1000
    with tempfile.TemporaryDirectory() as tmp, SlowGitHub(owner, name, latency) as standin:
        standin.github.permissions["alice"] = ("write", "write")
        folder = Path(tmp)
        env = app_environment(
            redis_url,
            standin.url,
            folder,
            # Throughput of the App itself: the per-installation write budget (60 a minute)
            # would otherwise cap one installation at ~5 workflows a minute.
            IDP_GITHUB_WRITES_PER_MINUTE="0",
            IDP_GITHUB_WRITES_PER_HOUR="0",
            # GitHub asks for a second between writes; the App's default spacing (1 s) would
            # set the pace of a burst. --write-interval puts it back for what one user waits.
            IDP_GITHUB_WRITE_INTERVAL=f"{args.write_interval:g}",
            # A trap for model calls: anything sent to an OpenAI-compatible server would
            # reach the stand-in, which records requests it cannot answer.
            OPENAI_BASE_URL=f"{standin.url}{TRAP}/v1",
        )
        for variable in [v for v in env if v.startswith(("OPENAI_API", "ANTHROPIC_"))]:
            del env[variable]
        burst = not args.one_at_a_time
        queued_at: dict[int, float] = {}
        if burst:
            jobs = enqueue_burst(connection, settings_of(env), count, queued_at)
        feeder = None if burst else OneAtATime(redis_url, settings_of(env), args, workers)
        commands = [
            worker_command(f"bench-{i + 1}", profile if i == 0 else None, burst)
            for i in range(workers)
        ]
        cpu, busy, spawned = own_cpu_seconds(), machine_busy_seconds(), time.time()
        if feeder is not None:
            feeder.start()
        watched = run_workers(commands, env, folder, timeout, feeder and feeder.stop)
        if feeder is not None:
            feeder.join()
            jobs, queued_at = feeder.jobs, feeder.queued_at
        wall, standin_cpu = time.time() - spawned, own_cpu_seconds() - cpu
        others = (machine_busy_seconds() - busy - watched.cpu_seconds - standin_cpu) / wall
        if args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
            for log in watched.logs:
                shutil.copy(log, args.logs / f"{workers}-workers-{log.name}")
        fetched = Job.fetch_many(list(jobs), connection=connection)
        figures = Figures(workers, count, worker_cpu_s=watched.cpu_seconds)
        figures.standin_cpu_s, figures.others_cores = standin_cpu, max(others, 0.0)
        figures.problems, figures.per_workflow = check_outcome(standin, jobs, fetched)
        if feeder is not None and feeder.problem:
            figures.problems.insert(0, feeder.problem)
        figures.github_latency_ms, figures.one_at_a_time = args.github_latency_ms, not burst
        figures.write_interval_s = args.write_interval
        waited = milestones(standin, queued_at)
        for record in figures.per_workflow:
            record |= waited[record["issue"]]
        timings(figures, fetched, spawned)
        github_calls(figures, standin, watched, jobs)
        model_calls(figures, standin, watched.logs, folder / "metrics")
        figures.memory_kib = asdict(watched.memory)
        if watched.timed_out:
            figures.problems.insert(0, f"the workers were stopped after {timeout:g} s")
        if any(watched.exit_codes):
            figures.problems.append(f"worker exit codes {watched.exit_codes}")
    connection.flushdb()
    return figures


def timings(figures: Figures, fetched: list[Job | None], spawned: float) -> None:
    """Throughput and latencies from RQ's job records (enqueued_at, started_at, ended_at)."""
    stamps = [
        (j.enqueued_at.timestamp(), j.started_at.timestamp(), j.ended_at.timestamp())
        for j in fetched
        if j and j.enqueued_at and j.started_at and j.ended_at
    ]
    if not stamps:
        return
    first, last = min(s for _, s, _ in stamps), max(e for _, _, e in stamps)
    figures.e2e_s = [e - q for q, _, e in stamps]
    figures.run_s = [e - s for _, s, e in stamps]
    figures.startup_s = first - spawned
    figures.rate = len(stamps) / (last - first) if last > first else 0.0
    figures.rate_with_startup = len(stamps) / (last - spawned)


def github_calls(
    figures: Figures, standin: GitHubStandIn, watched: Watched, jobs: dict[str, int]
) -> None:
    """Calls by method from the stand-in; writes per workflow from the workers' request log,
    checked against the stand-in's count."""
    calls = standin.github.calls
    tokens = [path for _, path, _ in calls if path.endswith("/access_tokens")]
    figures.token_requests = len(tokens)
    figures.github_by_method = dict(
        Counter(method for method, path, _ in calls if not path.endswith("/access_tokens"))
    )
    logged = [r for r in logged_requests(watched.logs) if r[2].startswith(standin.url)]
    if len(logged) != len(calls) + len(standin.unmatched):
        figures.problems.append(
            f"the workers logged {len(logged)} GitHub requests, the stand-in saw "
            f"{len(calls) + len(standin.unmatched)}: writes per workflow not attributable"
        )
        return
    calls_of: dict[str | None, Counter[str]] = {job: Counter() for job in jobs}
    for job, method, url in logged:
        if job in calls_of and "/access_tokens" not in url:
            calls_of[job][method] += 1
    for record, job in zip(figures.per_workflow, jobs, strict=True):
        record["github_calls"] = dict(calls_of[job])
        record["github_writes"] = sum(n for m, n in calls_of[job].items() if m != "GET")
    figures.writes = [record["github_writes"] for record in figures.per_workflow]


def model_calls(figures: Figures, standin: GitHubStandIn, logs: list[Path], metrics: Path):
    """LLM calls counted three ways: requests the workers logged to any host but the GitHub
    stand-in, requests that reached the stand-in's OpenAI trap, and the tokens metered."""
    logged = logged_requests(logs)
    figures.other_hosts = [url for _, _, url in logged if not url.startswith(standin.url)]
    figures.llm_trapped = sum(1 for u in standin.unmatched if f" {TRAP}/" in u)
    counters = app_counters(metrics) if metrics.is_dir() else {}
    figures.llm_tokens = counters.get("idp_llm_tokens_total", 0.0)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.workflow", description=__doc__)
    parser.add_argument("--workflows", type=int, default=40, help="workflows per run (40)")
    parser.add_argument("--workers", type=int, choices=(1, 2), default=1)
    parser.add_argument("--scaling", action="store_true", help="run 1 and then 2 workers")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--timeout", type=float, default=600.0, help="stop a run after S")
    parser.add_argument(
        "--github-latency-ms",
        type=float,
        default=0.0,
        help="the GitHub stand-in answers every request after this delay (0)",
    )
    parser.add_argument(
        "--write-interval",
        type=float,
        default=0.0,
        help="least seconds between two GitHub writes (IDP_GITHUB_WRITE_INTERVAL; the App's "
        "default is 1, the benchmark's 0)",
    )
    parser.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="queue each workflow once the last one ended, to running workers (no burst)",
    )
    parser.add_argument("--json", type=Path, help="write every figure and workflow here")
    parser.add_argument("--logs", type=Path, help="keep the workers' logs in this folder")
    parser.add_argument(
        "--profile", type=Path, help="py-spy record the first worker and its horses into FILE"
    )
    args = parser.parse_args(argv)
    if args.workflows < 1:
        parser.error("--workflows must be at least 1")
    if args.github_latency_ms < 0 or args.write_interval < 0:
        parser.error("--github-latency-ms and --write-interval cannot be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    print(f"command: python -m bench.workflow {shlex.join(argv)}".rstrip(), flush=True)
    print(f"machine: {machine()}", flush=True)
    counts = (1, 2) if args.scaling else (args.workers,)
    runs: list[Figures] = []
    try:
        for workers in counts:
            runs.append(run_burst(args.workflows, workers, args))
            print(report(runs[-1]), flush=True)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if len(runs) == 2 and runs[0].rate:
        one, two = runs
        print(
            f"scaling: 2 workers / 1 worker = {two.rate / one.rate:.2f}x workflows/s "
            f"({one.rate:.2f} -> {two.rate:.2f}); run time p50 "
            f"{percentile(one.run_s, 0.5):.2f} -> {percentile(two.run_s, 0.5):.2f} s"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=1))
    return 1 if any(r.problems for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
