"""The hand-written context-only tracer (app/tracing.py) against the SDK's tracer it stands
in for: the same operations through both, with the same id generator and sampler, must give
the same span contexts, the same carriers and the same trace ids on log lines."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from app.tracing import _ContextOnlyTracer, current_trace_id, extract_context, inject_context

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CARRIERS = [
    {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},  # sampled
    {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-00"},  # not sampled
    {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-03", "tracestate": "vendor=x,other=y"},
    {"traceparent": "00-zz-not-a-trace-01"},  # malformed: a trace of its own
    {},
]


class CountingIds(IdGenerator):
    """Ids 1, 2, 3 …: both tracers draw the same ids in the same order, or the test fails."""

    def __init__(self) -> None:
        self.next = 0

    def _take(self) -> int:
        self.next += 1
        return self.next

    def generate_span_id(self) -> int:
        return self._take()

    def generate_trace_id(self) -> int:
        return self._take() << 64


def seen(span) -> tuple:
    c = span.get_span_context()
    return (c.trace_id, c.span_id, int(c.trace_flags), c.trace_state.to_header(), c.is_remote)


def operations(tracer) -> list:
    """What the receiver and the worker do with spans: a root and a child, the carrier put
    in the job's meta, a job span continuing each kind of carrier, the ids on log lines."""
    out: list = []
    with tracer.start_as_current_span("webhook", kind=SpanKind.SERVER) as root:
        out += [seen(root), inject_context(), current_trace_id()]
        with tracer.start_as_current_span("enqueue") as child:
            out += [seen(child), inject_context(), current_trace_id()]
        out.append(seen(tracer.start_span("sibling")))
    for carrier in CARRIERS:
        context = extract_context(carrier)
        with tracer.start_as_current_span("job", context=context, kind=SpanKind.CONSUMER) as s:
            out += [seen(s), inject_context(), current_trace_id()]
            with tracer.start_as_current_span("step") as step:
                out += [seen(step), inject_context()]
    out += [inject_context(), current_trace_id()]  # nothing active any more
    return out


@pytest.mark.parametrize(
    "sampler",
    [None, ALWAYS_OFF, ParentBased(TraceIdRatioBased(0.5))],
    ids=["default", "always-off", "ratio"],
)
def test_the_context_only_tracer_gives_what_the_sdk_tracer_gives(sampler):
    kw = {"sampler": sampler} if sampler is not None else {}
    library = TracerProvider(id_generator=CountingIds(), **kw).get_tracer("idp_copilot")
    ours = _ContextOnlyTracer(TracerProvider(id_generator=CountingIds(), **kw))

    expected = operations(library)
    got = operations(ours)

    assert got == expected
    assert expected[1]["traceparent"].startswith("00-")  # the comparison saw real carriers
    assert any(c and c[0] == int(TRACE, 16) for c in expected if isinstance(c, tuple))
