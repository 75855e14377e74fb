"""The metrics operators scrape: the prototype's workflow and tool metrics on a create-service
run, GitHub calls and rate limit, LLM tokens, the queue depth on the web's `/metrics`, and the
workers' multiprocess metrics served by one worker per host."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import BaseModel, SecretStr
from rq.job import Job, JobStatus
from starlette.testclient import TestClient

from app import telemetry
from app.agent.providers.base import Message
from app.agent.providers.openai_chat import OpenAIChat
from app.domain.todo import Task
from app.github.forge import RepoRef
from app.github.github_forge import GitHubForge
from app.grammar.commands import Trigger
from app.web import WEBHOOK_PATH, create_app
from app.webhooks import route
from jobs.queue import enqueue_trigger, job_id_for
from jobs.tasks import run_parsed
from jobs.worker import claim_metrics_dir, fold_process_metrics
from tests import github_api as gh
from tests import payloads
from tests.conftest import TEST_REDIS_URL, WEBHOOK_SECRET
from tests.fakes import ServiceTools, install_fake_validator
from tests.llm_fixtures import load_conversation, use_recorded_llm
from tools.registry import ToolRegistry
from tools.spec import ToolError, ToolSpec

ROOT = Path(__file__).resolve().parents[1]
CREATE = "/idp create-service billing-api --lang python --team payments"
TOOLS = [spec.name for spec in ServiceTools().specs() if not spec.requires_approval]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    """The prototype's metrics for a create-service run, as Prometheus would scrape them."""
    values = {
        "started": sample("idp_workflows_started_total", command="create-service"),
        "completed": sample("idp_workflows_completed_total", command="create-service"),
        "failed": sample("idp_workflows_failed_total", command="create-service"),
        "active": sample("idp_active_workflows"),
        "steps": sum(
            sample("idp_step_duration_seconds_count", step=s) for s in ("plan", "act", "finish")
        ),
    }
    for tool in TOOLS:
        values[f"seconds {tool}"] = sample("idp_tool_execution_seconds_count", tool=tool)
        values[f"success {tool}"] = sample("idp_tool_success_total", tool=tool)
        values[f"failure {tool}"] = sample("idp_tool_failure_total", tool=tool)
    return values


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in before if after[key] != before[key]}


def run_job(settings, redis_conn, tools: ServiceTools, body: str = CREATE, number: int = 7):
    """One create-service comment, run in-process the way the RQ job runs it."""
    trigger = route("issue_comment", uuid.uuid4().hex, payloads.issue_comment(body, number=number))
    assert isinstance(trigger, Trigger)
    registry = ToolRegistry(tools.specs())

    async def job() -> dict[str, str]:
        return await run_parsed(trigger, settings, redis_conn, registry=registry)

    with telemetry.observe_job(trigger.model_dump(mode="json")) as observed:
        return observed.finish(asyncio.run(job()))


@pytest.fixture
def tools(monkeypatch) -> ServiceTools:
    install_fake_validator(monkeypatch)
    return ServiceTools()


# -- the prototype's metrics ----------------------------------------------------------------


def test_a_create_service_run_moves_the_workflow_step_and_tool_metrics(settings, redis_conn, tools):
    during: dict[str, float] = {}

    async def look(name, args, ctx) -> None:
        during["active"] = sample("idp_active_workflows")

    tools.hooks["generate_k8s_manifests"] = look
    before = snapshot()
    outcome = run_job(settings, redis_conn, tools)
    changes = moved(before, snapshot())

    # Done but for the steps that wait for `/idp apply`: the job itself completed.
    assert outcome["create-service"] == "waiting"
    assert during["active"] == before["active"] + 1
    assert "active" not in changes  # back where it was once the job ended
    assert changes["started"] == 1
    assert changes["completed"] == 1
    assert "failed" not in changes
    assert changes["steps"] >= 2  # the plan, then at least one step that ran tools
    for tool in TOOLS:
        assert changes[f"seconds {tool}"] == 1, tool
        assert changes[f"success {tool}"] == 1, tool
        assert f"failure {tool}" not in changes, tool


def test_a_failing_tool_counts_a_tool_failure_and_a_failed_workflow(settings, redis_conn, tools):
    async def break_it(name, args, ctx) -> None:
        raise ToolError("the template store is down (injected)")

    tools.hooks["setup_observability"] = break_it
    before = snapshot()
    outcome = run_job(settings, redis_conn, tools)
    changes = moved(before, snapshot())

    assert outcome["create-service"] == "failed"
    assert changes["failure setup_observability"] == 1
    assert changes["seconds setup_observability"] == 1
    assert "success setup_observability" not in changes
    assert changes["started"] == 1
    assert changes["failed"] == 1
    assert "completed" not in changes


def test_a_job_that_raises_counts_as_failed_and_leaves_no_active_workflow():
    trigger = {"delivery_id": "d-crash", "repo": "acme/payments", "number": 3, "commands": []}
    trigger["commands"] = [{"verb": "plan"}]
    before = (sample("idp_workflows_failed_total", command="plan"), sample("idp_active_workflows"))
    with pytest.raises(ConnectionError), telemetry.observe_job(trigger):
        raise ConnectionError("Redis went away")
    after = (sample("idp_workflows_failed_total", command="plan"), sample("idp_active_workflows"))
    assert after == (before[0] + 1, before[1])


def test_unknown_tool_names_share_one_label(settings):
    from tools.spec import ToolContext

    before = sample("idp_tool_failure_total", tool="unknown")
    ctx = ToolContext(settings=settings)
    result = asyncio.run(ToolRegistry([]).call("made_up_by_the_model_42", {}, ctx))
    assert not result.ok
    assert sample("idp_tool_failure_total", tool="unknown") == before + 1
    assert sample("idp_tool_failure_total", tool="made_up_by_the_model_42") == 0


# -- GitHub and the language model -----------------------------------------------------------


def test_github_calls_are_counted_by_status_and_the_rate_limit_is_kept(
    app_settings, redis_conn, no_unmocked_http
):
    github = gh.FakeGitHub(no_unmocked_http)
    remaining = {"x-ratelimit-remaining": "4321", "x-ratelimit-resource": "core"}
    github.fail(
        "GET",
        r"^/repos/acme/payments$",
        lambda request: httpx.Response(200, json=gh.repository(), headers=remaining),
    )
    repo = RepoRef(gh.OWNER, gh.NAME, gh.INSTALLATION_ID)
    installation = str(gh.INSTALLATION_ID)
    before = {
        status: sample("idp_github_api_calls_total", method=method, status=status)
        for method, status in (("GET", "200"), ("GET", "404"), ("POST", "201"))
    }

    async def calls() -> str | None:
        forge = GitHubForge(app_settings, redis_conn)
        await forge.default_branch(repo)
        return await forge.read_file(repo, "no/such/file.yaml")

    assert asyncio.run(calls()) is None
    assert sample("idp_github_api_calls_total", method="GET", status="200") == before["200"] + 1
    assert sample("idp_github_api_calls_total", method="GET", status="404") == before["404"] + 1
    # The installation token, made with the App's JWT.
    assert sample("idp_github_api_calls_total", method="POST", status="201") == before["201"] + 1
    rate = sample("idp_github_rate_limit_remaining", installation=installation, resource="core")
    assert rate == 4321


class Plan(BaseModel):
    title: str
    tasks: list[Task]


class Done(BaseModel):
    ok: bool = True


def test_llm_tokens_are_counted_by_provider_and_model(settings, monkeypatch, no_unmocked_http):
    use_recorded_llm(monkeypatch, no_unmocked_http, "openai_create_service")
    usage = load_conversation("openai_create_service")["exchanges"][0]["response"]["usage"]
    openai_settings = settings.model_copy(
        update={
            "openai_api_key": SecretStr("sk-test-telemetry-0123456789"),
            "openai_model": "gpt-4o-mini",
        }
    )
    write_todo = ToolSpec("write_todo", "plan", Plan, Done, lambda args, ctx: Done())
    labels = {"provider": "openai", "model": "gpt-4o-mini"}
    before = [sample("idp_llm_tokens_total", **labels, kind=k) for k in ("input", "output")]

    model = OpenAIChat(openai_settings)
    asyncio.run(model.complete("Plan.", [Message(role="user", content="a service")], [write_todo]))

    after = [sample("idp_llm_tokens_total", **labels, kind=k) for k in ("input", "output")]
    assert after[0] - before[0] == usage["prompt_tokens"]
    assert after[1] - before[1] == usage["completion_tokens"]


# -- the web's /metrics -------------------------------------------------------------------------


def test_web_metrics_show_the_queue_depth_read_from_redis(settings, redis_conn):
    client = TestClient(create_app(settings, connection=redis_conn))
    for delivery in ("q-1", "q-2"):
        body = payloads.encode(payloads.issue_comment("/idp status"))
        headers = payloads.headers("issue_comment", body, WEBHOOK_SECRET, delivery)
        assert client.post(WEBHOOK_PATH, content=body, headers=headers).status_code == 202
    text = client.get("/metrics").text
    assert f'idp_queue_depth{{queue="{settings.queue_name}"}} 2.0' in text
    redis_conn.delete(f"rq:queue:{settings.queue_name}")
    text = client.get("/metrics").text
    assert f'idp_queue_depth{{queue="{settings.queue_name}"}} 0.0' in text


def test_the_grafana_dashboard_queries_only_metrics_the_app_exposes(settings, redis_conn):
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard-app.json").read_text())
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    used = {name for query in queries for name in re.findall(r"\bidp_[a-z_]+", query)}
    exposed = {
        sample.name
        for collector in (REGISTRY, telemetry.QueueDepthCollector(redis_conn, ["any"]))
        for family in collector.collect()
        for sample in family.samples
    } | {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in ("", "_bucket", "_count", "_sum", "_total")
    }
    assert used and used <= exposed, sorted(used - exposed)
    wanted = ("deliveries", "queue_depth", "workflows", "tool_execution", "rate_limit", "llm")
    assert all(any(w in name for name in used) for w in wanted)


# -- workers: multiprocess metrics ------------------------------------------------------------


def count_in_a_process(directory: Path, code: str) -> int:
    """Run `code` in a fresh process in multiprocess mode, as a job's work horse would; its
    pid (whose files it leaves in `directory`)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    proc = subprocess.run(
        [sys.executable, "-c", "from app import telemetry as t\n" + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout)


def served(directory: Path) -> dict[tuple[str, tuple], float]:
    collector = MultiProcessCollector(None, path=str(directory))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in collector.collect()
        for s in metric.samples
    }


def test_finished_job_processes_fold_into_the_workers_archive_without_losing_counts(tmp_path):
    code = (
        "import os\n"
        "t.workflows_started.labels(command='create-service').inc()\n"
        "t.tool_execution_seconds.labels(tool='open_pull_request').observe(0.2)\n"
        "t.active_workflows.inc()\n"
        "t.github_rate_limit_remaining.labels(installation='1', resource='core').set({left})\n"
        "print(os.getpid())\n"
    )
    horses = [count_in_a_process(tmp_path, code.format(left=left)) for left in (4999, 4998)]
    started = ("idp_workflows_started_total", (("command", "create-service"),))
    assert served(tmp_path)[started] == 2
    assert served(tmp_path)[("idp_active_workflows", ())] == 2  # files of "live" processes

    for horse in horses:
        fold_process_metrics(tmp_path, horse, "archive-1")

    after = served(tmp_path)
    assert after[started] == 2
    assert after[("idp_tool_execution_seconds_count", (("tool", "open_pull_request"),))] == 2
    assert after.get(("idp_active_workflows", ()), 0) == 0  # ended processes run nothing
    rate = ("idp_github_rate_limit_remaining", (("installation", "1"), ("resource", "core")))
    assert after[rate] == 4998  # the newer reading
    names = sorted(p.name for p in tmp_path.glob("*.db"))
    assert not [n for n in names if any(n.endswith(f"_{pid}.db") for pid in horses)], names


def test_a_starting_worker_empties_the_folder_only_when_no_other_process_uses_it(tmp_path):
    stale = tmp_path / "counter_123.db"
    stale.write_bytes(b"\0" * 16)
    emptied, first = claim_metrics_dir(tmp_path)
    assert emptied and not stale.exists()

    stale.write_bytes(b"\0" * 16)  # a file of the first, still running, worker
    try:
        emptied_again, second = claim_metrics_dir(tmp_path)
        assert not emptied_again and stale.exists()
        second.close()
    finally:
        first.close()
    emptied, third = claim_metrics_dir(tmp_path)
    third.close()
    assert emptied and not stale.exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _wait_for(what: str, check, logs: list[Path], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    text = "\n".join(p.read_text()[-3000:] for p in logs if p.exists())
    pytest.fail(f"{what} did not happen:\n{text}")


def _scrape(port: int) -> str | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.TransportError:
        return None


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_two_workers_on_one_host_share_one_metrics_endpoint_that_counts_every_job(
    settings, redis_conn, tmp_path
):
    port = _free_port()
    folder = tmp_path / "metrics"
    prefix = f"idpmp{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "IDP_"))}
    env.update(
        REDIS_URL=TEST_REDIS_URL,
        IDP_REDIS_PREFIX=prefix,
        IDP_QUEUE=prefix,
        IDP_FORGE="local",
        IDP_LOCAL_FORGE_ROOT=str(tmp_path / "forge"),
        IDP_LLM_PROVIDER="rules",
        IDP_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(folder),
        HOME=str(tmp_path),
    )
    worker_settings = settings.model_copy(update={"redis_prefix": prefix, "queue_name": prefix})
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    procs: list[subprocess.Popen] = []

    def run(delivery: str, number: int) -> None:
        payload = payloads.issue_comment(CREATE, number=number)
        trigger = route("issue_comment", delivery, payload)
        assert enqueue_trigger(redis_conn, worker_settings, trigger)

        def done() -> bool:
            job = Job.fetch(job_id_for(delivery), connection=redis_conn)
            return job.get_status() in (JobStatus.FINISHED, JobStatus.FAILED)

        _wait_for(f"job {delivery}", done, logs)

    try:
        procs.append(_start_worker(env, logs[0]))
        _wait_for("the first worker's metrics endpoint", lambda: _scrape(port) is not None, logs)
        run("mp-1", 7)
        # A second worker starts while the first runs: it must not wipe the first's counts.
        procs.append(_start_worker(env, logs[1]))
        _wait_for("the second worker", lambda: "port" in logs[1].read_text(), logs[1:])
        run("mp-2", 8)
        text = _scrape(port) or ""
    finally:
        for proc in procs:
            _stop(proc)

    assert f"port {port} is taken" in logs[1].read_text()
    # Each create-service run validates the name once, whichever worker ran it.
    line = 'idp_tool_execution_seconds_count{tool="validate_project_name_and_type"} 2.0'
    assert line in text, text
    assert re.search(r'idp_step_duration_seconds_count\{step="plan"\} 2\.0', text), text
    # Job processes' files were folded into their worker's archive: none is left behind.
    workers = {str(p.pid) for p in procs} | {f"archive-{p.pid}" for p in procs}
    owners = {p.name.rsplit("_", 1)[1].removesuffix(".db") for p in folder.glob("*.db")}
    assert owners <= workers, (owners, workers)
