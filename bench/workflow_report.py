"""The figures of one run of bench/workflow.py, and how they are printed."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

WRITE_CAP = 25  # issue 6: GitHub writes of one create-service workflow


@dataclass
class Figures:
    """One run's results; `per_workflow` holds each workflow's own record."""

    workers: int
    workflows: int
    problems: list[str] = field(default_factory=list)
    rate: float = 0.0  # workflows/s, first job start to last job end
    rate_with_startup: float = 0.0  # workflows/s, workers' start to last job end
    startup_s: float = 0.0
    e2e_s: list[float] = field(default_factory=list)
    run_s: list[float] = field(default_factory=list)
    github_by_method: dict[str, int] = field(default_factory=dict)
    token_requests: int = 0
    writes: list[int] = field(default_factory=list)
    llm_trapped: int = 0  # requests that reached the stand-in's OpenAI trap
    other_hosts: list[str] = field(default_factory=list)  # requests to any other host
    llm_tokens: float = 0.0
    worker_cpu_s: float = 0.0
    standin_cpu_s: float = 0.0
    others_cores: float = 0.0
    memory_kib: dict[str, int] = field(default_factory=dict)
    per_workflow: list[dict[str, Any]] = field(default_factory=list)
    github_latency_ms: float = 0.0
    one_at_a_time: bool = False
    write_interval_s: float = 0.0


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with `share` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def report(f: Figures) -> str:
    """The figures of one run, as printed."""
    n = f.workflows
    per = {m: f"{v / n:.1f}" for m, v in sorted(f.github_by_method.items())}
    calls = sum(f.github_by_method.values())
    arrival = "one at a time" if f.one_at_a_time else "queued at once"
    lines = [
        f"workers {f.workers}, workflows {n} ({arrival}; GitHub stand-in answering after "
        f"{f.github_latency_ms:g} ms, writes {f.write_interval_s:g} s apart at least, "
        "write budget off, rules provider)",
        f"  outcome: {'OK' if not f.problems else 'FAILED'}: "
        f"{sum(1 for r in f.per_workflow if r['status'] == 'finished')} of {n} jobs finished, "
        f"{sum(len(r['pull_requests']) for r in f.per_workflow)} pull requests and "
        f"{sum(r['todo_comments'] for r in f.per_workflow)} todo comments "
        + ("(one each per workflow)" if not f.problems else ""),
    ]
    lines += [f"  problem: {p}" for p in f.problems[:20]]
    if f.run_s:
        lines += [
            f"  workflows/s: {f.rate:.2f} (first job start to last job end); "
            f"{f.rate_with_startup:.2f} counting worker start-up ({f.startup_s:.1f} s)",
            f"  end to end (enqueued -> ended): p50 {percentile(f.e2e_s, 0.5):.2f} s, "
            f"p95 {percentile(f.e2e_s, 0.95):.2f} s",
            f"  run time (started -> ended): p50 {percentile(f.run_s, 0.5):.2f} s, "
            f"p95 {percentile(f.run_s, 0.95):.2f} s, max {max(f.run_s):.2f} s",
        ]
    for key, what in (("first_comment_s", "first comment"), ("pull_request_s", "pull request")):
        waits = [r[key] for r in f.per_workflow if r.get(key) is not None]
        if waits:
            lines.append(
                f"  webhook -> {what}: p50 {percentile(waits, 0.5):.2f} s, "
                f"p95 {percentile(waits, 0.95):.2f} s ({len(waits)} of {n} workflows)"
            )
    lines.append(
        f"  GitHub calls per workflow: {calls / n:.1f} ("
        + ", ".join(f"{m} {v}" for m, v in per.items())
        + f"), plus {f.token_requests} installation token request(s) for the whole run"
    )
    if f.writes:
        worst = max(f.writes)
        lines.append(
            f"  GitHub writes per workflow: mean {statistics.mean(f.writes):.1f}, min "
            f"{min(f.writes)}, max {worst}; cap {WRITE_CAP} (issue 6): the worst workflow is "
            f"{WRITE_CAP - worst} below it, at {worst / WRITE_CAP:.0%} of the cap"
        )
    lines.append(
        f"  LLM calls per workflow: {(f.llm_trapped + len(f.other_hosts)) / n:g} (requests "
        f"to any host but the GitHub stand-in: {len(f.other_hosts)}; to its OpenAI trap: "
        f"{f.llm_trapped}; idp_llm_tokens_total: {f.llm_tokens:g})"
    )
    mem = {k: v / 1024 for k, v in f.memory_kib.items()}
    lines += [
        f"  worker RSS peak: worker process {mem['worker_hwm']:.0f} MiB, work horse "
        f"{max(mem['child_hwm'], mem['largest_process']):.0f} MiB; "
        f"all worker processes at once {mem['together_rss']:.0f} MiB RSS, "
        f"{mem['together_pss']:.0f} MiB PSS",
        f"  CPU per workflow: workers {f.worker_cpu_s / n:.2f} s (horses and start-up "
        f"included), bench process (GitHub stand-in) {f.standin_cpu_s / n:.2f} s; "
        f"other work on the machine: {f.others_cores:.1f} cores",
    ]
    return "\n".join(lines)
