"""One trace per workflow: the receiver's span, its W3C carrier in the RQ job's meta, and the
worker's spans continuing it, read back from an in-memory exporter (and from the console
exporter of a second process)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id
from rq.job import Job

from app.tracing import (
    OTLP_EXTRA,
    configure_tracing,
    current_trace_id,
    flush_tracing,
    inject_context,
    shutdown_tracing,
    span_from_carrier,
    tracer,
)

ROOT = Path(__file__).resolve().parents[1]
OTLP_MODULE = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


@pytest.fixture
def spans(settings):
    exporter = InMemorySpanExporter()
    configure_tracing(settings, "idp-copilot-test", processors=[SimpleSpanProcessor(exporter)])
    yield exporter
    shutdown_tracing()


def by_name(exporter: InMemorySpanExporter) -> dict:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_a_job_continues_the_receivers_trace_through_the_rq_job_meta(spans, redis_conn):
    # The web process: the webhook span, the enqueue span, the carrier saved with the job.
    with (
        tracer().start_as_current_span("webhook", kind=SpanKind.SERVER),
        tracer().start_as_current_span("enqueue", kind=SpanKind.PRODUCER),
    ):
        job = Job.create("builtins.print", connection=redis_conn, meta={"otel": {}})
        job.meta["otel"] = inject_context()
        job.save()
    assert current_trace_id() is None

    # The worker: only what Redis holds.
    fetched = Job.fetch(job.id, connection=redis_conn)
    with (
        span_from_carrier("job", fetched.meta["otel"], attributes={"job.id": job.id}),
        tracer().start_as_current_span("tool"),
    ):
        pass

    found = by_name(spans)
    webhook, enqueue, run, tool = (found[n] for n in ("webhook", "enqueue", "job", "tool"))
    assert {s.context.trace_id for s in (webhook, enqueue, run, tool)} == {webhook.context.trace_id}
    assert enqueue.parent.span_id == webhook.context.span_id
    assert run.parent.span_id == enqueue.context.span_id
    assert run.parent.is_remote
    assert tool.parent.span_id == run.context.span_id
    assert run.kind == SpanKind.CONSUMER
    assert run.attributes["job.id"] == job.id


def test_the_carrier_is_a_w3c_traceparent_of_the_active_span(spans):
    with tracer().start_as_current_span("webhook") as span:
        carrier = inject_context()
        context = span.get_span_context()
    version, trace_id, span_id, flags = carrier["traceparent"].split("-")
    assert version == "00"
    assert int(flags, 16) & 1  # sampled
    assert trace_id == format_trace_id(context.trace_id)
    assert span_id == format_span_id(context.span_id)


def test_without_an_active_span_the_carrier_is_empty_and_there_is_no_trace_id(spans):
    assert inject_context() == {}
    assert current_trace_id() is None


def test_current_trace_id_is_the_active_traces_hex_id(spans):
    with tracer().start_as_current_span("step") as span:
        assert current_trace_id() == format_trace_id(span.get_span_context().trace_id)
        assert len(current_trace_id()) == 32


@pytest.mark.parametrize(
    "carrier",
    [None, {}, {"traceparent": "not-a-traceparent"}, {"traceparent": 42}, {7: "x"}],
    ids=["none", "empty", "garbage", "not-a-string", "odd-key"],
)
def test_a_missing_or_malformed_carrier_starts_a_trace_of_its_own(spans, carrier):
    with span_from_carrier("job", carrier):
        assert current_trace_id() is not None
    (job,) = spans.get_finished_spans()
    assert job.parent is None


def test_an_exception_in_the_job_is_recorded_on_its_span_and_raised(spans):
    with pytest.raises(RuntimeError, match="GitHub kept failing"), span_from_carrier("job", {}):
        raise RuntimeError("GitHub kept failing")
    (job,) = spans.get_finished_spans()
    assert job.status.status_code == StatusCode.ERROR
    assert [event.name for event in job.events] == ["exception"]


def test_a_second_process_continues_the_trace_and_prints_it_with_the_console_exporter(spans):
    with tracer().start_as_current_span("enqueue") as parent:
        carrier = inject_context()
    worker = (
        "import json, sys\n"
        "from app.config import Settings\n"
        "from app.tracing import configure_tracing, shutdown_tracing, span_from_carrier\n"
        "configure_tracing(Settings(enable_otel_console=True), 'idp-copilot-worker')\n"
        "with span_from_carrier('job', json.loads(sys.argv[1])):\n"
        "    pass\n"
        "shutdown_tracing()\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", worker, json.dumps(carrier)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    printed = json.loads(done.stdout)
    context = parent.get_span_context()
    assert printed["name"] == "job"
    assert printed["context"]["trace_id"] == "0x" + format_trace_id(context.trace_id)
    assert printed["parent_id"] == "0x" + format_span_id(context.span_id)
    assert printed["resource"]["attributes"]["service.name"] == "idp-copilot-worker"


def test_nothing_is_printed_when_the_console_exporter_is_off(settings, capsys):
    configure_tracing(settings, "idp-copilot-test")
    try:
        with tracer().start_as_current_span("quiet") as span:
            assert span.get_span_context().is_valid  # ids still exist for the logs
    finally:
        shutdown_tracing()
    assert capsys.readouterr().out == ""


def test_console_exporter_prints_spans_when_enabled(settings, capsys):
    configure_tracing(settings.model_copy(update={"enable_otel_console": True}), "web")
    try:
        with tracer().start_as_current_span("webhook"):
            pass
    finally:
        shutdown_tracing()
    assert json.loads(capsys.readouterr().out)["name"] == "webhook"


def test_an_otlp_endpoint_without_the_exporter_installed_warns_once_naming_the_extra(
    settings, monkeypatch, caplog
):
    monkeypatch.setitem(sys.modules, OTLP_MODULE, None)  # import fails as if not installed
    exporter = InMemorySpanExporter()
    configured = settings.model_copy(update={"otel_exporter_otlp_endpoint": "http://otel:4318"})
    with caplog.at_level(logging.WARNING, logger="app.tracing"):
        configure_tracing(configured, "web", processors=[SimpleSpanProcessor(exporter)])
    try:
        with tracer().start_as_current_span("webhook"):
            pass
    finally:
        shutdown_tracing()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"pip install '{OTLP_EXTRA}'" in warnings[0]
    assert [s.name for s in exporter.get_finished_spans()] == ["webhook"]


@pytest.mark.parametrize(
    "endpoint", ["http://otel:4318", "http://otel:4318/", "http://otel:4318/v1/traces"]
)
def test_an_otlp_endpoint_sends_spans_to_the_collectors_traces_path(
    settings, monkeypatch, endpoint
):
    sent: list[tuple[str, list[str]]] = []

    class OTLPSpanExporter(InMemorySpanExporter):
        def __init__(self, endpoint: str) -> None:
            super().__init__()
            self.endpoint = endpoint

        def export(self, batch):
            sent.append((self.endpoint, [span.name for span in batch]))
            return super().export(batch)

    module = types.ModuleType(OTLP_MODULE)
    module.OTLPSpanExporter = OTLPSpanExporter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, OTLP_MODULE, module)
    configure_tracing(settings.model_copy(update={"otel_exporter_otlp_endpoint": endpoint}), "w")
    try:
        with tracer().start_as_current_span("job"):
            pass
        assert flush_tracing()
    finally:
        shutdown_tracing()
    assert sent == [("http://otel:4318/v1/traces", ["job"])]
