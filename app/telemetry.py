"""Prometheus metrics, named in one place so dashboards written against them keep working, and
the hooks that move them (and open the matching trace spans) for jobs, agent steps, tools,
GitHub calls and language-model calls.

The web process moves the webhook metrics and serves `/metrics`; the workflow and tool
metrics keep the original prototype's names (prometheus_client shows counters with a
`_total` suffix in the exposition, e.g. `idp_workflows_started_total`). Workers count in
Prometheus multiprocess mode (jobs/worker.py), so every gauge says how samples of several
processes combine (`multiprocess_mode`); in a single process that setting does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from rq import Queue

from app.domain.outcomes import FAILED_OUTCOMES
from app.domain.session import session_id_for
from app.logs import log_context
from app.tracing import flush_tracing, span_from_carrier, tracer

log = logging.getLogger(__name__)

# -- web side ------------------------------------------------------------------------------

WEBHOOK_OUTCOMES = ("queued", "duplicate", "ignored", "rejected", "unavailable", "error")

webhook_deliveries = Counter(
    "idp_webhook_deliveries_total",
    "Webhook deliveries received, by event and outcome "
    "(queued, duplicate, ignored, rejected, unavailable, error).",
    ["event", "outcome"],
)
webhook_signature_failures = Counter(
    "idp_webhook_signature_failures_total",
    "Webhook deliveries whose X-Hub-Signature-256 was missing or matched no configured secret.",
)
enqueue_seconds = Histogram(
    "idp_enqueue_seconds",
    "Time to dedupe and enqueue one delivery in Redis (one round trip).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

# -- workflows and tools (the prototype's names) ------------------------------------------

workflows_started = Counter("idp_workflows_started", "Workflows started, by command.", ["command"])
workflows_completed = Counter(
    "idp_workflows_completed", "Workflows that finished successfully, by command.", ["command"]
)
workflows_failed = Counter(
    "idp_workflows_failed", "Workflows that ended in failure, by command.", ["command"]
)
step_duration_seconds = Histogram(
    "idp_step_duration_seconds",
    "Duration of one agent step, by step (plan, act, finish).",
    ["step"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
# livesum: the running jobs of every live process add up; a killed job process's +1 goes
# away with it (jobs/worker.py removes its files).
active_workflows = Gauge(
    "idp_active_workflows", "Workflows running right now.", multiprocess_mode="livesum"
)
tool_execution_seconds = Histogram(
    "idp_tool_execution_seconds",
    "Duration of one tool call, by tool.",
    ["tool"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
tool_success = Counter("idp_tool_success", "Tool calls that succeeded, by tool.", ["tool"])
tool_failure = Counter("idp_tool_failure", "Tool calls that failed, by tool.", ["tool"])

# -- GitHub and language models -------------------------------------------------------------

github_api_calls = Counter(
    "idp_github_api_calls_total",
    "GitHub REST calls answered, by method and HTTP status (retries count once each).",
    ["method", "status"],
)
# mostrecent: the newest reading wins, whichever process made it.
github_rate_limit_remaining = Gauge(
    "idp_github_rate_limit_remaining",
    "X-RateLimit-Remaining of the latest GitHub answer, by installation ('app' for the App's "
    "own JWT calls) and rate-limit resource.",
    ["installation", "resource"],
    multiprocess_mode="mostrecent",
)
llm_tokens = Counter(
    "idp_llm_tokens_total",
    "Language-model tokens, by provider, model and kind (input, output).",
    ["provider", "model", "kind"],
)

# -- jobs -------------------------------------------------------------------------------------


def workflow_commands(trigger: Mapping[str, Any]) -> list[str]:
    """The `command` labels of a job: each command's verb, "errors" for a comment that held
    only unparsable commands, "none" when there is nothing to run."""
    verbs = [str(c.get("verb")) for c in trigger.get("commands") or [] if isinstance(c, Mapping)]
    if verbs:
        return list(dict.fromkeys(verbs))
    return ["errors"] if trigger.get("errors") else ["none"]


@dataclass
class JobObservation:
    """What `observe_job` yields: hand the job's outcomes (verb → outcome) to `finish`."""

    commands: list[str]
    span: Span
    outcomes: dict[str, str] = field(default_factory=dict)

    def finish(self, outcomes: Mapping[str, str]) -> dict[str, str]:
        self.outcomes = dict(outcomes)
        return self.outcomes


@contextmanager
def observe_job(
    trigger: Mapping[str, Any], job: Any = None, *, session_id: str | None = None
) -> Iterator[JobObservation]:
    """Everything the RQ job function needs around one trigger, for operators: the job span
    continuing the receiver's trace (carrier in `job.meta["otel"]`), log lines carrying the
    job, delivery, session and trace ids, the workflow counters and `idp_active_workflows`.
    A command whose outcome is "failed", or a job that raises, counts as failed.

    Spans are flushed at the end: RQ's work horse leaves through os._exit, which skips the
    exit hooks that would flush them.
    """
    commands = workflow_commands(trigger)
    job_id = getattr(job, "id", None)
    meta = getattr(job, "meta", None)
    carrier = meta.get("otel") if isinstance(meta, Mapping) else None
    if session_id is None and trigger.get("repo") and trigger.get("number") is not None:
        session_id = session_id_for(str(trigger["repo"]), int(trigger["number"]))
    delivery_id = trigger.get("delivery_id")
    attributes = {
        "messaging.system": "rq",
        "messaging.message.id": job_id or "",
        "idp.delivery_id": str(delivery_id or ""),
        "idp.session_id": session_id or "",
        "idp.commands": commands,
    }
    try:
        with (
            span_from_carrier("job", carrier, attributes=attributes) as span,
            log_context(job_id=job_id, delivery_id=delivery_id, session_id=session_id),
        ):
            observation = JobObservation(commands, span)
            for command in commands:
                workflows_started.labels(command=command).inc()
            active_workflows.inc()
            log.info("job started: %s", " ".join(commands))
            try:
                yield observation
            except BaseException as exc:
                for command in commands:
                    workflows_failed.labels(command=command).inc()
                log.warning("job failed: %s", type(exc).__name__)
                raise
            finally:
                active_workflows.dec()
            failed = [c for c in commands if observation.outcomes.get(c) in FAILED_OUTCOMES]
            for command in commands:
                counter = workflows_failed if command in failed else workflows_completed
                counter.labels(command=command).inc()
            if failed:
                span.set_status(Status(StatusCode.ERROR, f"failed: {', '.join(failed)}"))
            log.info("job finished: %s", observation.outcomes or "no outcome")
    finally:
        flush_tracing()


# -- agent steps ------------------------------------------------------------------------------


class AgentSteps:
    """The steps of one agent run, for `idp_step_duration_seconds` and one `agent step` span
    each. A step is the work between two checkpoints of the loop; its span is current while
    it lasts, so tool and model calls made in it (and tasks they start) become its children.

    The loop calls `begin` when the run starts, `next` at each checkpoint, and `last()` before
    the final checkpoint, whose `next` then ends the last step without opening another.
    Everything happens in the run's own asyncio task, so the span's context is attached and
    detached in the same context.
    """

    def __init__(self) -> None:
        self._span: Span | None = None
        self._token: object = None
        self._started = 0.0
        self._plan: tuple[str, ...] = ()
        self._records = 0
        self._count = 0
        self._closing = False

    def begin(self, session: Any) -> None:
        """Open the next step (ending one still open)."""
        self.end(session)
        self._count += 1
        self._span = tracer().start_span(
            "agent step",
            attributes={"idp.session_id": str(session.id), "idp.step.number": self._count},
        )
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        self._started = time.perf_counter()
        self._plan = _task_ids(session)
        self._records = len(session.steps)

    def next(self, session: Any) -> None:
        """A checkpoint: end the current step, then open the next unless `last()` was called."""
        if self._closing:
            self.end(session)
        else:
            self.begin(session)

    def last(self) -> None:
        self._closing = True

    def end(self, session: Any) -> None:
        """End the open step, if any; its kind is what it did: "plan" (the todo's tasks
        changed), "act" (it ran tools) or "finish" (neither: answers, outcomes, the todo)."""
        span, token, self._span, self._token = self._span, self._token, None, None
        if span is None:
            return
        if _task_ids(session) != self._plan:
            kind = "plan"
        elif len(session.steps) > self._records:
            kind = "act"
        else:
            kind = "finish"
        step_duration_seconds.labels(step=kind).observe(time.perf_counter() - self._started)
        span.set_attribute("idp.step.kind", kind)
        span.end()
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]


def _task_ids(session: Any) -> tuple[str, ...]:
    todo = getattr(session, "todo", None)
    return tuple(task.id for task in todo.tasks) if todo is not None else ()


# -- tools and language models ----------------------------------------------------------------


@contextmanager
def observe_tool(tool: str) -> Iterator[Any]:
    """A `tool NAME` span around one tool call; call what it yields with the call's ok flag,
    duration and error to move `idp_tool_execution_seconds` and `idp_tool_success|failure`."""
    with tracer().start_as_current_span(f"tool {tool}", attributes={"idp.tool": tool}) as span:

        def record(ok: bool, duration: float, error: str | None = None) -> None:
            tool_execution_seconds.labels(tool=tool).observe(duration)
            (tool_success if ok else tool_failure).labels(tool=tool).inc()
            span.set_attribute("idp.tool.ok", ok)
            if not ok:
                # The error sentence is redacted by the registry and meant for users.
                span.set_status(Status(StatusCode.ERROR, (error or "failed")[:300]))

        yield record


@contextmanager
def observe_llm(provider: str, model: str) -> Iterator[Any]:
    """An `llm` span around one model call; call what it yields with the turn's token usage
    (input, output) to count `idp_llm_tokens_total` and note them on the span."""
    attributes = {"gen_ai.system": provider, "gen_ai.request.model": model}
    with tracer().start_as_current_span("llm", kind=SpanKind.CLIENT, attributes=attributes) as span:

        def record(input_tokens: int, output_tokens: int) -> None:
            llm_tokens.labels(provider=provider, model=model, kind="input").inc(input_tokens)
            llm_tokens.labels(provider=provider, model=model, kind="output").inc(output_tokens)
            span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", output_tokens)

        yield record


# -- GitHub -----------------------------------------------------------------------------------

_STARTED = "idp_started_ns"


def github_event_hooks(installation_id: int | None) -> dict[str, list[Any]]:
    """httpx event hooks for a GitHub client: count each answer by method and status, keep the
    remaining rate limit, and record a `github METHOD` span (retries each get their own)."""
    installation = str(installation_id) if installation_id is not None else "unknown"

    async def on_request(request: httpx.Request) -> None:
        request.extensions[_STARTED] = time.time_ns()

    async def on_response(response: httpx.Response) -> None:
        record_github_response(response, installation)

    return {"request": [on_request], "response": [on_response]}


def record_github_response(response: httpx.Response, installation: str) -> None:
    """Metrics and span for one GitHub answer (the span starts when the request was sent)."""
    request = response.request
    method, status = request.method, response.status_code
    github_api_calls.labels(method=method, status=str(status)).inc()
    remaining = response.headers.get("x-ratelimit-remaining")
    if remaining is not None and remaining.isdigit():
        # Calls signed with the App's JWT (token requests, /app/…) have a rate limit of their
        # own; a JWT is the only credential we send that starts with "eyJ".
        credential = request.headers.get("authorization", "").rpartition(" ")[2]
        owner = "app" if credential.startswith("eyJ") else installation
        resource = response.headers.get("x-ratelimit-resource", "core")[:40]
        github_rate_limit_remaining.labels(installation=owner, resource=resource).set(
            int(remaining)
        )
    started = request.extensions.get(_STARTED)
    span = tracer().start_span(
        f"github {method}",
        kind=SpanKind.CLIENT,
        start_time=started if isinstance(started, int) else None,
        attributes={
            "http.request.method": method,
            "server.address": request.url.host,
            "url.path": request.url.path,
            "http.response.status_code": status,
        },
    )
    if status >= 400:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
    span.end()


# -- queue depth ------------------------------------------------------------------------------


class QueueDepthCollector:
    """`idp_queue_depth{queue}`: jobs waiting in each RQ queue, read from Redis when
    Prometheus scrapes. A Redis error leaves the sample out rather than failing the scrape."""

    def __init__(self, connection: redis.Redis, queues: Iterable[str]) -> None:
        self.connection = connection
        self.queues = list(queues)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "idp_queue_depth", "Jobs waiting in each RQ queue, at scrape time.", labels=["queue"]
        )
        for name in self.queues:
            try:
                depth = Queue(name, connection=self.connection).count
            except redis.RedisError as exc:
                log.warning("queue depth of %s not read: Redis error %s", name, type(exc).__name__)
                continue
            family.add_metric([name], depth)
        yield family


class Exposition:
    """Several collectors (a registry, a `QueueDepthCollector`) as one, for generate_latest."""

    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()
