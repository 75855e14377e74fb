"""Observability for a service: the Prometheus scrape (ServiceMonitor, or PodMonitor for a
worker, which has no Service), SLO alerts as multi-window burn rates, and a Grafana dashboard.

The alerts read the series the generated app exposes (`tools/render_common.metric_names`)
under `job="<name>"`, which the monitors set through `jobLabel`.
"""

from __future__ import annotations

import json
from typing import Any

from app.domain.service import ServiceRequest
from tools.render_common import (
    DEFAULT_BASE_PATH,
    check_request,
    dump_yaml,
    join,
    metadata,
    metric_names,
    selector_labels,
    service_dir,
    slo_bucket,
)
from tools.render_k8s import KUSTOMIZE_API, PORT_NAME, has_service

MONITORING_API = "monitoring.coreos.com/v1"
# (severity, long window, short window, burn-rate factor): the multi-window, multi-burn-rate
# alerts of the Google SRE workbook for a 30-day error budget.
BURN_RATE_ALERTS = (
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "1d", "2h", 3.0),
    ("ticket", "3d", "6h", 1.0),
)
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def _alert_name(req: ServiceRequest, suffix: str) -> str:
    return "".join(part.capitalize() for part in req.name.split("-")) + suffix


def _record(req: ServiceRequest, window: str) -> str:
    return f"{req.type}:error_ratio:rate{window}"


def monitor(req: ServiceRequest) -> dict[str, Any]:
    """ServiceMonitor for api/web, PodMonitor for workers; `job` becomes the service name."""
    endpoint = {"port": PORT_NAME, "path": "/metrics", "interval": "30s"}
    kind = "ServiceMonitor" if has_service(req) else "PodMonitor"
    endpoints_key = "endpoints" if has_service(req) else "podMetricsEndpoints"
    return {
        "apiVersion": MONITORING_API,
        "kind": kind,
        "metadata": metadata(req),
        "spec": {
            "jobLabel": "app.kubernetes.io/name",
            "selector": {"matchLabels": selector_labels(req)},
            endpoints_key: [endpoint],
        },
    }


def error_ratio_expr(req: ServiceRequest, window: str) -> str:
    m = metric_names(req)
    return (
        f'sum by (namespace) (rate({m.counter}{{job="{req.name}",{m.error_matcher}}}[{window}]))\n'
        f'/\nsum by (namespace) (rate({m.counter}{{job="{req.name}"}}[{window}]))'
    )


def latency_expr(req: ServiceRequest) -> str:
    m = metric_names(req)
    return (
        "histogram_quantile(0.99,\n"
        f'  sum by (namespace, le) (rate({m.histogram}_bucket{{job="{req.name}"}}[5m]))\n'
        f") > {slo_bucket(req)}"
    )


def prometheus_rule(req: ServiceRequest) -> dict[str, Any]:
    """Recording rules for the error ratio, burn-rate alerts on the availability objective,
    a p99 latency alert and a target-down alert."""
    budget = round(1 - req.availability_slo / 100, 6)
    labels = {"team": req.team, "service": req.name}
    runbook = "docs/runbook.md"
    records = [
        {"record": _record(req, w), "expr": error_ratio_expr(req, w), "labels": {"job": req.name}}
        for w in WINDOWS
    ]
    alerts = []
    for severity, long_w, short_w, factor in BURN_RATE_ALERTS:
        threshold = round(factor * budget, 6)
        sel = f'{{job="{req.name}"}}'
        alerts.append(
            {
                "alert": _alert_name(req, "ErrorBudgetBurn"),
                "expr": f"{_record(req, long_w)}{sel} > {threshold}\n"
                f"and\n{_record(req, short_w)}{sel} > {threshold}",
                "for": "2m" if severity == "page" else "15m",
                "labels": {**labels, "severity": severity, "window": long_w},
                "annotations": {
                    "summary": f"{req.name} is burning its error budget {factor}x too fast",
                    "description": f"The error ratio over {long_w} and {short_w} is above "
                    f"{threshold} (objective: {req.availability_slo}% available).",
                    "runbook": f"{runbook}#error-budget-burn",
                },
            }
        )
    alerts.append(
        {
            "alert": _alert_name(req, "LatencyHigh"),
            "expr": latency_expr(req),
            "for": "15m",
            "labels": {**labels, "severity": "ticket"},
            "annotations": {
                "summary": f"{req.name} p99 latency is above {req.latency_p99_ms} ms",
                "description": "The 99th percentile over 5m has stayed above the objective "
                "for 15 minutes.",
                "runbook": f"{runbook}#latency-high",
            },
        }
    )
    alerts.append(
        {
            "alert": _alert_name(req, "Down"),
            "expr": f'absent(up{{job="{req.name}"}} == 1)',
            "for": "5m",
            "labels": {**labels, "severity": "page"},
            "annotations": {
                "summary": f"No {req.name} pod has been scraped successfully for 5 minutes",
                "description": "Prometheus finds no healthy target for the service.",
                "runbook": f"{runbook}#down",
            },
        }
    )
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": metadata(req),
        "spec": {
            "groups": [
                {"name": f"{req.name}.slo.records", "interval": "30s", "rules": records},
                {"name": f"{req.name}.slo.alerts", "rules": alerts},
            ]
        },
    }


def _panels(specs: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Timeseries panels from (title, PromQL, unit), two to a row."""
    return [
        {
            "id": index + 1,
            "type": "timeseries",
            "title": title,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": "A", "expr": expr}],
        }
        for index, (title, expr, unit) in enumerate(specs)
    ]


def dashboard(req: ServiceRequest) -> dict[str, Any]:
    """A Grafana dashboard: traffic, errors against the budget, p99 against the objective,
    and the pods' CPU and memory, for the namespace picked at the top."""
    m = metric_names(req)
    sel = f'job="{req.name}", namespace="$namespace"'
    pods = f'namespace="$namespace", pod=~"{req.name}-.*", container="{req.name}"'
    budget = round(1 - req.availability_slo / 100, 6)
    errors = f"sum(rate({m.counter}{{{sel}, {m.error_matcher}}}[5m]))"
    p99 = f"histogram_quantile(0.99, sum by (le) (rate({m.histogram}_bucket{{{sel}}}[5m])))"
    panels = _panels(
        [
            ("Throughput", f"sum(rate({m.counter}{{{sel}}}[5m]))", "ops"),
            (
                f"Error ratio (budget {budget})",
                f"{errors} / sum(rate({m.counter}{{{sel}}}[5m]))",
                "percentunit",
            ),
            (f"p99 latency (objective {req.latency_p99_ms} ms)", p99, "s"),
            ("Error budget burn rate (1h)", f"{_record(req, '1h')}{{{sel}}} / {budget}", "none"),
            (
                "CPU",
                f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{pods}}}[5m]))",
                "none",
            ),
            ("Memory", f"sum by (pod) (container_memory_working_set_bytes{{{pods}}})", "bytes"),
        ]
    )
    datasource = {"name": "datasource", "type": "datasource", "query": "prometheus"}
    namespace = {
        "name": "namespace",
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": f'label_values(up{{job="{req.name}"}}, namespace)',
        "refresh": 2,
    }
    return {
        "uid": req.name[:40],  # Grafana caps dashboard uids at 40 characters
        "title": f"{req.name} ({req.team})",
        "tags": ["idp-copilot", req.team, req.type],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [datasource, namespace]},
        "panels": panels,
    }


def render_observability(req: ServiceRequest, base_path: str = DEFAULT_BASE_PATH) -> dict[str, str]:
    """`observability/`: the monitor, the PrometheusRule, the dashboard and a kustomization
    to apply the first two into the service's namespace (`kubectl apply -k ... -n NS`)."""
    check_request(req)
    root = join(service_dir(req, base_path), "observability")
    monitor_file = "servicemonitor.yaml" if has_service(req) else "podmonitor.yaml"
    return {
        join(root, monitor_file): dump_yaml(monitor(req)),
        join(root, "prometheusrule.yaml"): dump_yaml(prometheus_rule(req)),
        join(root, "dashboard.json"): json.dumps(dashboard(req), indent=2) + "\n",
        join(root, "kustomization.yaml"): dump_yaml(
            {
                "apiVersion": KUSTOMIZE_API,
                "kind": "Kustomization",
                "resources": [monitor_file, "prometheusrule.yaml"],
            }
        ),
    }
