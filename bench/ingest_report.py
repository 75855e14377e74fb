"""The ingest benchmark's summary: medians per server, the ratios of serve to its peers, the
targets, and the checks that every delivery was taken in (exit status 1 otherwise).

On a shared machine other work moves requests/s from round to round, so each ratio is given
three ways: of the medians; paired (the median of the per-round ratios, whose runs are seconds
apart); and by CPU time per request, which is what the requests/s ratio would be with each
server alone on its core and moves least with other work.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import redis
from rq import Queue

from bench.probot_peer import QUEUE_KEY
from bench.wrk import Run, median_run

TARGET_RATIO_BARE = 0.5
TARGET_RATIO_PROBOT = 1.0  # issue 20: ingest at Probot's speed or better, per process
TARGET_P99_MS = 5.0
ACCEPTED = {"serve": 202, "probot": 200, "bare": 202}  # the status of a delivery taken in


def ratios(serve: list[Run], peer: list[Run]) -> tuple[float, float, float]:
    """serve/peer requests/s: of the medians, paired (median of per-round ratios), by CPU."""
    of_medians = median_run(serve).rps / median_run(peer).rps
    paired = statistics.median(s.rps / p.rps for s, p in zip(serve, peer, strict=True))
    by_cpu = statistics.median(
        p.server_cpu_us / s.server_cpu_us for s, p in zip(serve, peer, strict=True)
    )
    return of_medians, paired, by_cpu


def report(
    args: argparse.Namespace,
    runs: list[Run],
    measured: dict[str, list[Run]],
    connection: redis.Redis,
    queue: str,
) -> int:
    """Print the medians, the ratios and the targets; 1 when the run cannot be trusted."""
    print(f"load average (1 min) after the run: {os.getloadavg()[0]:.2f}")
    print(
        f"\nmedian over {args.rounds} round(s), {args.requests} requests each, "
        f"{args.connections} connections:"
    )
    medians = {name: median_run(done) for name, done in measured.items()}
    for run in medians.values():
        print(
            f"{run.target + ':':<8}{run.rps:.0f} requests/s, p50 {run.p50_ms:.2f} ms, "
            f"p95 {run.p95_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, "
            f"server CPU {run.server_cpu_us:.0f} us/request"
        )
    verdict = {True: "met", False: "MISSED"}
    targets = {"bare": TARGET_RATIO_BARE, "probot": TARGET_RATIO_PROBOT}
    for peer in [name for name in ("probot", "bare") if name in measured]:
        of_medians, paired, by_cpu = ratios(measured["serve"], measured[peer])
        print(
            f"ratio serve/{peer}: {of_medians:.2f} (paired, median of per-round ratios: "
            f"{paired:.2f}; by CPU per request, {peer}/serve: {by_cpu:.2f}; "
            f"target >= {targets[peer]}: {verdict[paired >= targets[peer]]})"
        )
    serve = medians["serve"]
    quick = serve.p99_ms < TARGET_P99_MS
    print(f"serve p99: {serve.p99_ms:.2f} ms (target < {TARGET_P99_MS} ms: {verdict[quick]})")
    others = max(run.others_cpu for run in runs)
    if others > 0.25:
        print(
            f"note: other work kept up to {others:.1f} cores busy during a run; every figure "
            "above moves with that: the paired and CPU ratios move least"
        )
    if args.profile:
        print(f"profile of serve: {args.profile} (py-spy slowed serve: keep these figures out)")
    problems = check(args, runs, measured, connection, queue)
    for problem in problems:
        print(f"bench.ingest: {problem}", file=sys.stderr)
    return 1 if problems else 0


def check(
    args: argparse.Namespace,
    runs: list[Run],
    measured: dict[str, list[Run]],
    connection: redis.Redis,
    queue: str,
) -> list[str]:
    """Every request answered as taken in, no socket error, and every delivery serve and
    Probot took in is in Redis (serve's as RQ jobs, Probot's in its list)."""
    taken = {
        name: sum(r.statuses.get(ACCEPTED[name], 0) for r in runs if r.target == name)
        for name in measured
    }
    sent = {name: sum(r.requests for r in runs if r.target == name) for name in measured}
    stored = {"serve": Queue(queue, connection=connection).count}
    if "probot" in measured:
        stored["probot"] = connection.llen(QUEUE_KEY)
    print(f"serve accepted (202): {taken['serve']}; jobs in the RQ queue: {stored['serve']}")
    if "probot" in measured:
        print(f"probot accepted (200): {taken['probot']}; in its Redis list: {stored['probot']}")
    if not args.keep_queue:
        connection.flushdb()
    problems = []
    if any(r.requests < r.quota for r in runs):
        problems.append(f"a run hit the {args.max_seconds} s limit before its requests")
    if any(r.socket_errors for r in runs):
        problems.append("socket errors (see the runs above)")
    for name in measured:
        if taken[name] != sent[name]:
            problems.append(f"{name} answered something other than {ACCEPTED[name]}")
    for name, count in stored.items():
        if count != taken[name]:
            problems.append(f"{name}: {taken[name]} deliveries accepted but {count} stored")
    return problems
