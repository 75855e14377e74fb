"""Recovery time after a worker is SIGKILLed mid-run: `python -m bench.recovery`.

A real `idp-copilot worker` runs `/idp create-service …` against a GitHub stand-in on
loopback; while GitHub is answering the pull-request call, the worker, its work horse and its
scheduler get SIGKILL (a lost node, an OOM-killed pod). A new worker starts at once. The
figure is the time from the kill to the end of the job on the new worker (or of the
continuation it left, when it found the dead run's session lock still held); each round also
checks that the workflow finished exactly once (one todo comment, one branch, one commit,
one pull request) and exits with status 1 otherwise.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import redis
from rq.job import JobStatus

from tests import payloads
from tests.github_standin import GitHubStandIn
from tests.processes import app_environment, kill_mid_run_and_recover


def exactly_once(standin: GitHubStandIn) -> list[str]:
    """What went wrong on GitHub, if anything: more or fewer than one of each write."""
    github = standin.github
    writes = github.writes()
    counts = {
        "todo comments": sum(1 for m, p in writes if m == "POST" and p.endswith("/comments")),
        "branches": sum(1 for m, p in writes if m == "POST" and p.endswith("/git/refs")),
        "commits": sum(1 for m, p in writes if m == "POST" and p.endswith("/git/commits")),
        "pull requests": len(github.pulls),
    }
    return [f"{n} {what}" for what, n in counts.items() if n != 1] + standin.unmatched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="give up a round after S")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--logs", type=Path, help="keep the workers' logs in this folder")
    args = parser.parse_args(argv)
    if args.redis_url.rstrip("/").endswith(("/0", ":6379")):
        parser.error("give the benchmark a Redis DB of its own (not DB 0): it flushes it")
    print("command: python -m bench.recovery " + shlex.join(argv or sys.argv[1:]), flush=True)
    print(f"machine: {platform.node()} {platform.machine()} python {platform.python_version()}")
    connection = redis.Redis.from_url(args.redis_url)
    figures: list[float] = []
    failed = False
    for round_ in range(1, args.rounds + 1):
        connection.flushdb()
        owner, name = payloads.REPO.split("/")
        with tempfile.TemporaryDirectory() as tmp, GitHubStandIn(owner, name) as standin:
            standin.github.permissions["alice"] = ("write", "write")
            folder = Path(tmp)
            if args.logs is not None:
                folder = args.logs / f"round-{round_}"
                folder.mkdir(parents=True, exist_ok=True)
            env = app_environment(args.redis_url, standin.url, folder)
            try:
                recovery = kill_mid_run_and_recover(env, connection, standin, folder, args.timeout)
            except AssertionError as exc:
                print(f"round {round_}: not recovered: {str(exc)[:2000]}")
                failed = True
                continue
            status = recovery.last.get_status(refresh=True)  # the job that ended it
            wrong = exactly_once(standin)
            print(
                f"round {round_}: recovered in {recovery.seconds:.1f} s "
                f"(job {status.value if status else 'gone'}"
                + (f"; NOT exactly once: {', '.join(wrong)})" if wrong else ", exactly once)"),
                flush=True,
            )
            failed = failed or bool(wrong) or status != JobStatus.FINISHED
            figures.append(recovery.seconds)
    connection.flushdb()
    if figures:
        print(
            f"recovery after SIGKILL: median {statistics.median(figures):.1f} s, "
            f"min {min(figures):.1f} s, max {max(figures):.1f} s over {len(figures)} rounds"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
