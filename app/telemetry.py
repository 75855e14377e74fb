"""Prometheus metrics, named in one place so dashboards written against them keep working.

The web process moves the webhook metrics; the workflow and tool metrics keep the original
prototype's names (prometheus_client shows counters with a `_total` suffix in the
exposition, e.g. `idp_workflows_started_total`). Everything lives in the default registry,
which `/metrics` serves.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    "idp_step_duration_seconds", "Duration of one agent step, by step.", ["step"]
)
active_workflows = Gauge("idp_active_workflows", "Workflows running right now.")
tool_execution_seconds = Histogram(
    "idp_tool_execution_seconds", "Duration of one tool call, by tool.", ["tool"]
)
tool_success = Counter("idp_tool_success", "Tool calls that succeeded, by tool.", ["tool"])
tool_failure = Counter("idp_tool_failure", "Tool calls that failed, by tool.", ["tool"])
