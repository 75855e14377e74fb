"""OpenTelemetry for the web and worker processes: one trace per workflow, from the webhook
through the RQ job to each agent step, tool and GitHub or LLM call.

The receiver puts `inject_context()` (a W3C `traceparent`) into the RQ job's meta; the
worker continues the trace with `span_from_carrier(...)`. Spans go to the console when
IDP_ENABLE_OTEL_CONSOLE is set and to an OTLP collector when OTEL_EXPORTER_OTLP_ENDPOINT is
(the exporter is the optional extra `idp-copilot[otlp]`). With neither, spans still carry a
trace context (nothing is recorded or exported), so log lines carry a trace id that ties the
web and worker together.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager

from opentelemetry import trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    format_trace_id,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from app.config import Settings

log = logging.getLogger(__name__)

TRACER_NAME = "idp_copilot"
OTLP_EXTRA = "idp-copilot[otlp]"
_OTLP_MODULE = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
# W3C Trace Context only, whatever OTEL_PROPAGATORS says: the carrier must mean the same in
# the web process and the worker.
_propagator = TraceContextTextMapPropagator()


class _ContextOnlyTracer(trace.Tracer):
    """Spans that carry a trace context (the ids on log lines, the carrier in the job's meta)
    and record nothing: what the SDK's spans amount to when no span processor would see
    them, at a fraction of their cost (~5 us against ~20 us per span; the receiver makes two
    per delivery, bench/RESULTS.md). Ids and the sampling decision come from the provider,
    as the SDK's tracer would take them."""

    def __init__(self, provider: TracerProvider) -> None:
        self._sampler = provider.sampler
        self._ids = provider.id_generator

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, random_id = parent.trace_id, parent.trace_flags.random_trace_id
        else:
            trace_id, random_id = self._ids.generate_trace_id(), self._ids.is_trace_id_random()
        sampling = self._sampler.should_sample(context, trace_id, name, kind, attributes, links)
        flags = TraceFlags.SAMPLED if sampling.decision.is_sampled() else TraceFlags.DEFAULT
        if random_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        span_context = SpanContext(
            trace_id,
            self._ids.generate_span_id(),
            is_remote=False,
            trace_flags=TraceFlags(flags),
            trace_state=sampling.trace_state,
        )
        return NonRecordingSpan(span_context)

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> _CurrentSpan:
        return _CurrentSpan(self.start_span(name, context, kind, attributes, links))


class _CurrentSpan:
    """Makes a span the current one inside a `with` block (what `trace.use_span` does, minus
    the exception recording that a non-recording span ignores anyway)."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span

    def __enter__(self) -> Span:
        self._token = attach(set_span_in_context(self._span))
        return self._span

    def __exit__(self, *exc_info: object) -> None:
        detach(self._token)


class _Provider(TracerProvider):
    """The SDK's provider, knowing whether any span processor would see a span."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource=resource)
        # Built once: `get_tracer` builds a new SDK tracer (and its metrics) on every call.
        self.recording_tracer = self.get_tracer(TRACER_NAME)
        self.context_tracer = _ContextOnlyTracer(self)
        self.recording = False

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self.recording = True


_provider: _Provider | None = None


def configure_tracing(
    settings: Settings, service_name: str, *, processors: Sequence[SpanProcessor] = ()
) -> TracerProvider:
    """Set up tracing for this process (`idp-copilot-web`, `idp-copilot-worker`, ...): the
    exporters the settings ask for, plus `processors` (tests pass an in-memory exporter).
    Calling it again replaces the previous set-up."""
    global _provider
    provider = _Provider(resource=Resource.create({SERVICE_NAME: service_name}))
    if settings.enable_otel_console:
        # stdout looked up now, not at import, so a redirected stdout is honoured.
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
    if settings.otel_exporter_otlp_endpoint:
        exporter = _otlp_exporter(settings.otel_exporter_otlp_endpoint)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in processors:
        provider.add_span_processor(processor)
    previous, _provider = _provider, provider
    if previous is not None:
        previous.shutdown()
    # OpenTelemetry allows one global provider per process; set it the first time so
    # third-party instrumentation reports into the same traces. Our code uses `tracer()`.
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def _traces_url(endpoint: str) -> str:
    # OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL; the OTLP/HTTP spec appends the
    # signal path, which the exporter does not do for an endpoint passed in code.
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def _otlp_exporter(endpoint: str) -> SpanExporter | None:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not installed, so no "
            "traces are sent: install it with `pip install '%s'` "
            "(opentelemetry-exporter-otlp-proto-http)",
            OTLP_EXTRA,
        )
        return None
    return OTLPSpanExporter(endpoint=_traces_url(endpoint))


def tracer() -> trace.Tracer:
    """The App's tracer; a no-op one until `configure_tracing` ran. Its spans are recorded
    when a span processor (an exporter) is configured, and carry only their context else."""
    provider = _provider
    if provider is None:
        return trace.get_tracer_provider().get_tracer(TRACER_NAME)
    return provider.recording_tracer if provider.recording else provider.context_tracer


def inject_context(context: Context | None = None) -> dict[str, str]:
    """The current trace as W3C headers (`traceparent`, maybe `tracestate`), for the RQ job's
    meta; empty when no span is active."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=context)
    return carrier


def extract_context(carrier: Mapping[str, object] | None) -> Context:
    """The trace context a carrier from `inject_context` holds; an empty context for a
    missing or malformed carrier (the job then starts a trace of its own)."""
    clean = {k: v for k, v in (carrier or {}).items() if isinstance(k, str) and isinstance(v, str)}
    return _propagator.extract(clean)


def span_from_carrier(
    name: str,
    carrier: Mapping[str, object] | None,
    *,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: Attributes = None,
) -> AbstractContextManager[Span]:
    """A span that continues the trace of `carrier` (the job's meta) and is current inside
    the `with` block; exceptions are recorded on it and re-raised."""
    return tracer().start_as_current_span(
        name, context=extract_context(carrier), kind=kind, attributes=attributes
    )


def current_trace_id() -> str | None:
    """The active trace's id as 32 hex digits (what tracing back ends show), or None."""
    context = trace.get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None


def flush_tracing(timeout_millis: int = 5000) -> bool:
    """Export what is buffered. Call at the end of each RQ job: the work horse process ends
    with os._exit, which skips the exit hooks that would flush the batch exporter."""
    return _provider.force_flush(timeout_millis) if _provider is not None else True


def shutdown_tracing() -> None:
    """Flush and stop the exporters (process exit, tests)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None
