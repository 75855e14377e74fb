"""One workflow, one trace: the receiver's webhook span, the carrier in the RQ job's meta, the
job span, the agent's steps and each tool call under them; GitHub and LLM calls as spans of
the tool or step that made them; log lines carrying the ids that tie them together."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_trace_id
from pydantic import BaseModel, SecretStr
from rq.job import Job
from starlette.testclient import TestClient

from app.agent.providers.base import Message
from app.agent.providers.openai_chat import OpenAIChat
from app.domain.session import session_id_for
from app.domain.todo import Task
from app.github.forge import RepoRef
from app.github.github_forge import GitHubForge
from app.grammar.commands import Trigger
from app.telemetry import observe_job
from app.tracing import configure_tracing, shutdown_tracing, tracer
from app.web import WEBHOOK_PATH, create_app
from jobs.queue import job_id_for
from jobs.tasks import run_parsed
from tests import github_api as gh
from tests import payloads
from tests.conftest import WEBHOOK_SECRET
from tests.fakes import ServiceTools, install_fake_validator
from tests.leaks import captured_logs
from tests.llm_fixtures import load_conversation, use_recorded_llm
from tools.registry import ToolRegistry
from tools.spec import ToolSpec

CREATE = "/idp create-service billing-api --lang python --team payments"
DELIVERY = "trace-delivery-1"


@pytest.fixture
def spans(settings) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing(settings, "idp-copilot-test", processors=[SimpleSpanProcessor(exporter)])
    yield exporter
    shutdown_tracing()


@pytest.fixture
def log_lines(settings) -> Iterator[io.StringIO]:
    """Every log record as the JSON line an operator's log stack receives."""
    with captured_logs(settings, "INFO") as out:
        yield out


def deliver(client: TestClient, body: str, delivery: str = DELIVERY):
    raw = payloads.encode(payloads.issue_comment(body))
    headers = payloads.headers("issue_comment", raw, WEBHOOK_SECRET, delivery)
    return client.post(WEBHOOK_PATH, content=raw, headers=headers)


@pytest.fixture
def workflow(settings, redis_conn, spans, monkeypatch) -> Job:
    """A create-service comment through the receiver, then its job as the worker runs it:
    only what Redis holds crosses from one side to the other."""
    install_fake_validator(monkeypatch)
    client = TestClient(create_app(settings, connection=redis_conn))
    assert deliver(client, CREATE).json()["status"] == "queued"

    job = Job.fetch(job_id_for(DELIVERY), connection=redis_conn)
    trigger = Trigger.model_validate(job.kwargs["trigger"])
    registry = ToolRegistry(ServiceTools().specs())

    async def run() -> dict[str, str]:
        return await run_parsed(trigger, settings, redis_conn, registry=registry)

    with observe_job(job.kwargs["trigger"], job) as observed:
        observed.finish(asyncio.run(run()))
    return job


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def parent_of(exporter: InMemorySpanExporter, span: ReadableSpan) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    by_id = {s.context.span_id: s for s in exporter.get_finished_spans()}
    return by_id[span.parent.span_id]


def test_one_workflow_is_one_trace_from_the_webhook_to_each_tool_call(workflow, spans):
    (webhook,) = named(spans, "webhook")
    (enqueue,) = named(spans, "enqueue")
    (job,) = named(spans, "job")
    steps = named(spans, "agent step")
    tool = named(spans, "tool generate_k8s_manifests")[0]

    assert webhook.parent is None and webhook.kind == SpanKind.SERVER
    assert parent_of(spans, enqueue) is webhook and enqueue.kind == SpanKind.PRODUCER
    assert parent_of(spans, job) is enqueue and job.kind == SpanKind.CONSUMER
    assert job.parent.is_remote  # continued from the carrier in the job's meta
    assert job.attributes["messaging.message.id"] == workflow.id
    assert steps and all(parent_of(spans, step) is job for step in steps)
    assert parent_of(spans, tool) in steps
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {webhook.context.trace_id}
    kinds = [step.attributes["idp.step.kind"] for step in steps]
    assert kinds[0] == "plan" and "act" in kinds
    assert webhook.attributes["idp.outcome"] == "queued"


def test_every_tool_call_of_the_run_is_a_span_under_an_agent_step(workflow, spans):
    steps = {s.context.span_id for s in named(spans, "agent step")}
    tools = [s for s in spans.get_finished_spans() if s.name.startswith("tool ")]
    called = {s.name.removeprefix("tool ") for s in tools}
    assert {"validate_project_name_and_type", "generate_k8s_manifests"} <= called
    assert "open_pull_request" in called
    assert all(s.parent.span_id in steps for s in tools)
    assert all(s.status.status_code != StatusCode.ERROR for s in tools)


def test_job_logs_carry_the_delivery_session_job_and_trace_ids(
    settings, redis_conn, spans, log_lines, monkeypatch
):
    install_fake_validator(monkeypatch)
    client = TestClient(create_app(settings, connection=redis_conn))
    deliver(client, CREATE)
    job = Job.fetch(job_id_for(DELIVERY), connection=redis_conn)
    trigger = Trigger.model_validate(job.kwargs["trigger"])
    registry = ToolRegistry(ServiceTools().specs())
    with observe_job(job.kwargs["trigger"], job) as observed:
        observed.finish(asyncio.run(run_parsed(trigger, settings, redis_conn, registry=registry)))

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    trace_id = format_trace_id(named(spans, "webhook")[0].context.trace_id)
    received = [line for line in lines if line["logger"] == "app.web"]
    ran = [line for line in lines if line["logger"] == "app.telemetry"]
    assert received and ran
    for line in received:
        assert (line["delivery_id"], line["trace_id"]) == (DELIVERY, trace_id)
    for line in ran:
        assert line["delivery_id"] == DELIVERY
        assert line["job_id"] == job.id
        assert line["session_id"] == session_id_for(payloads.REPO, trigger.number)
        assert line["trace_id"] == trace_id
    assert any("job finished" in line["message"] for line in ran)


def test_a_refused_delivery_is_a_webhook_span_with_no_job(settings, redis_conn, spans):
    client = TestClient(create_app(settings, connection=redis_conn))
    raw = payloads.encode(payloads.issue_comment(CREATE))
    headers = payloads.headers("issue_comment", raw, "not-the-secret", "forged-1")
    assert client.post(WEBHOOK_PATH, content=raw, headers=headers).status_code == 401
    (webhook,) = named(spans, "webhook")
    assert webhook.attributes["idp.outcome"] == "rejected"
    assert webhook.attributes["http.response.status_code"] == 401
    assert named(spans, "enqueue") == []


def test_github_calls_are_spans_under_the_tool_that_made_them(
    settings, redis_conn, spans, no_unmocked_http
):
    github_settings = gh.as_app(settings)
    gh.FakeGitHub(no_unmocked_http)
    repo = RepoRef(gh.OWNER, gh.NAME, gh.INSTALLATION_ID)

    async def publish() -> None:
        forge = GitHubForge(github_settings, redis_conn)
        with tracer().start_as_current_span("tool open_pull_request"):
            await forge.default_branch(repo)
            await forge.read_file(repo, "missing.yaml")

    asyncio.run(publish())
    (tool,) = named(spans, "tool open_pull_request")
    calls = [s for s in spans.get_finished_spans() if s.name.startswith("github ")]
    seen = sorted((s.name, s.attributes["http.response.status_code"]) for s in calls)
    assert seen == [("github GET", 200), ("github GET", 404), ("github POST", 201)]
    assert all(parent_of(spans, s) is tool and s.kind == SpanKind.CLIENT for s in calls)
    (missing,) = [s for s in calls if s.attributes["http.response.status_code"] == 404]
    assert missing.status.status_code == StatusCode.ERROR
    assert missing.attributes["url.path"] == "/repos/acme/payments/contents/missing.yaml"
    assert all(s.start_time < s.end_time for s in calls)


class Plan(BaseModel):
    title: str
    tasks: list[Task]


class Done(BaseModel):
    ok: bool = True


def test_an_llm_call_is_a_span_with_its_token_usage(settings, spans, monkeypatch, no_unmocked_http):
    use_recorded_llm(monkeypatch, no_unmocked_http, "openai_create_service")
    usage = load_conversation("openai_create_service")["exchanges"][0]["response"]["usage"]
    model = OpenAIChat(
        settings.model_copy(update={"openai_api_key": SecretStr("sk-test-trace-0123456789abcdef")})
    )
    write_todo = ToolSpec("write_todo", "plan", Plan, Done, lambda args, ctx: Done())

    async def step() -> None:
        with tracer().start_as_current_span("agent step"):
            await model.complete("Plan.", [Message(role="user", content="a service")], [write_todo])

    asyncio.run(step())
    (llm,) = named(spans, "llm")
    assert parent_of(spans, llm).name == "agent step"
    assert llm.attributes["gen_ai.system"] == "openai"
    assert llm.attributes["gen_ai.request.model"] == settings.openai_model
    assert llm.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert llm.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]


def test_the_carrier_in_the_job_meta_is_what_the_worker_continues(workflow, spans, redis_conn):
    carrier = Job.fetch(workflow.id, connection=redis_conn).meta["otel"]
    (enqueue,) = named(spans, "enqueue")
    trace_id, span_id = carrier["traceparent"].split("-")[1:3]
    assert int(trace_id, 16) == enqueue.context.trace_id
    assert int(span_id, 16) == enqueue.context.span_id
