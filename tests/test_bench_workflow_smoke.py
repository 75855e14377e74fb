"""The workflow benchmark (`python -m bench.workflow`) runs end to end on a tiny burst: real
worker processes drain it, every figure prints, and each workflow opened exactly one pull
request. No timing is asserted; the figures themselves belong in bench/RESULTS.md."""

from __future__ import annotations

import json
import re
import shlex
from types import SimpleNamespace

import httpx

from bench.workflow import TRAP, model_calls
from bench.workflow_latency import milestones
from bench.workflow_report import WRITE_CAP, Figures
from tests import payloads
from tests.conftest import TEST_REDIS_URL
from tests.github_standin import GitHubStandIn
from tests.processes import run_module
from tools.builtin.publish import branch_for

FIGURES = [
    r"^  workflows/s: \d+\.\d\d \(first job start to last job end\)",
    r"^  end to end \(enqueued -> ended\): p50 \d+\.\d\d s, p95 \d+\.\d\d s",
    r"^  run time \(started -> ended\): p50 \d+\.\d\d s, p95 \d+\.\d\d s",
    r"^  GitHub calls per workflow: \d+\.\d \(GET \d+\.\d, PATCH \d+\.\d, POST \d+\.\d\)",
    r"^  GitHub writes per workflow: mean \d+\.\d, min \d+, max \d+; cap 25",
    r"^  LLM calls per workflow: 0 \(requests to any host but the GitHub stand-in: 0; "
    r"to its OpenAI trap: 0; idp_llm_tokens_total: 0\)",
    r"^  worker RSS peak: worker process \d+ MiB, work horse \d+ MiB",
    r"^  CPU per workflow: workers \d+\.\d\d s",
]


def test_workflow_benchmark_prints_its_figures_and_opens_one_pull_request_per_workflow(
    redis_conn, tmp_path
):
    figures_file = tmp_path / "figures.json"
    argv = ["--workflows", "2", "--workers", "1", "--redis-url", TEST_REDIS_URL]
    argv += ["--json", str(figures_file)]
    done = run_module("bench.workflow", *argv)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]

    assert f"command: python -m bench.workflow {shlex.join(argv)}" in out
    assert "outcome: OK: 2 of 2 jobs finished, 2 pull requests and 2 todo comments" in out
    for figure in FIGURES:
        assert re.search(figure, out, re.MULTILINE), f"{figure!r} not in:\n{out}"

    [run] = json.loads(figures_file.read_text())
    workflows = run["per_workflow"]
    assert [(w["issue"], w["status"], w["todo_comments"]) for w in workflows] == [
        (1, "finished", 1),
        (2, "finished", 1),
    ]
    assert [len(w["pull_requests"]) for w in workflows] == [1, 1]
    assert workflows[0]["pull_requests"] != workflows[1]["pull_requests"]
    assert all(0 < w["github_writes"] <= WRITE_CAP for w in workflows)
    assert run["problems"] == []


def test_a_model_request_from_a_worker_counts_as_an_llm_call(tmp_path):
    """The LLM figure is a count: a request to the OpenAI trap, or any request a worker
    logged to a host other than the GitHub stand-in, shows up in it."""
    owner, name = payloads.REPO.split("/")
    log = tmp_path / "worker-1.log"
    anthropic = "https://api.anthropic.com/v1/messages"
    line = {"logger": "httpx2", "message": f'HTTP Request: POST {anthropic} "HTTP/1.1 200 OK"'}
    log.write_text(json.dumps(line) + "\n")
    figures = Figures(workers=1, workflows=1)
    with GitHubStandIn(owner, name) as standin:
        trapped = httpx.post(f"{standin.url}{TRAP}/v1/chat/completions", json={"model": "m"})
        model_calls(figures, standin, [log], tmp_path / "no-metrics")

    assert trapped.status_code == 404
    assert figures.llm_trapped == 1
    assert figures.other_hosts == [anthropic]


def test_one_at_a_time_with_github_latency_reports_the_waits_for_comment_and_pull_request(
    redis_conn, tmp_path
):
    figures_file = tmp_path / "figures.json"
    argv = ["--workflows", "2", "--one-at-a-time", "--github-latency-ms", "20"]
    argv += ["--redis-url", TEST_REDIS_URL, "--json", str(figures_file)]
    done = run_module("bench.workflow", *argv)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]

    stand_in = "GitHub stand-in answering after 20 ms, writes 0 s apart"
    assert f"workflows 2 (one at a time; {stand_in}" in out
    assert "outcome: OK: 2 of 2 jobs finished, 2 pull requests and 2 todo comments" in out
    for what in ("first comment", "pull request"):
        pattern = rf"^  webhook -> {what}: p50 \d+\.\d\d s, p95 \d+\.\d\d s \(2 of 2 workflows\)"
        assert re.search(pattern, out, re.MULTILINE), out
    [run] = json.loads(figures_file.read_text())
    assert (run["github_latency_ms"], run["one_at_a_time"]) == (20, True)
    # The todo comment is written before the pull request is opened, in every workflow.
    assert all(0 < w["first_comment_s"] < w["pull_request_s"] for w in run["per_workflow"])


def test_milestones_match_the_comment_and_the_pull_request_to_their_issue():
    """The first comment POST on issue #k and the pull request whose head is #k's session
    branch count for workflow k; later comments and other issues do not."""
    owner, name = payloads.REPO.split("/")
    repo = f"/repos/{owner}/{name}"
    head = json.dumps({"head": branch_for(f"{payloads.REPO}#2"), "base": "main"}).encode()
    standin = SimpleNamespace(
        answered=[
            (10.5, "GET", f"{repo}/issues/2/comments", b""),
            (11.0, "POST", f"{repo}/issues/2/comments", b"{}"),
            (12.0, "POST", f"{repo}/issues/2/comments", b"{}"),
            (13.0, "POST", f"{repo}/issues/9/comments", b"{}"),
            (14.0, "POST", f"{repo}/pulls", head),
        ]
    )
    waited = milestones(standin, {1: 9.0, 2: 10.0})
    assert waited == {
        1: {"first_comment_s": None, "pull_request_s": None},
        2: {"first_comment_s": 1.0, "pull_request_s": 4.0},
    }
