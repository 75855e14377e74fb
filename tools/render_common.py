"""What every renderer shares: where a service's files go, its labels, metric names, the
latency buckets its SLO alerts depend on, and YAML output that reads like hand-written YAML.

Used by `tools/render*.py`; pure functions of the `ServiceRequest`.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import yaml

from app.domain.service import ServiceRequest
from app.untrusted import linear
from tools.templates import RUN_AS_ID, builtin_set

if TYPE_CHECKING:
    from tools.template_sets import LanguageProfile, TemplateSet

DEFAULT_BASE_PATH = "services/{name}"
MANAGED_BY = "idp-copilot"
# The first image tag the overlays point at; pushing the git tag `<name>-v0.1.0` builds it.
INITIAL_VERSION = "0.1.0"
# Stands in for the GitHub owner when the renderer is not told the repository.
DEFAULT_IMAGE_OWNER = "your-org"
# Namespaces that may reach the pods: where the ingress controller and Prometheus run.
INGRESS_NAMESPACE = "ingress-nginx"
MONITORING_NAMESPACE = "monitoring"
INGRESS_CLASS = "nginx"
ENVIRONMENTS = ("staging", "production")
DEFAULT_LANGUAGE = "python"

# RE2, whole values only (a trailing newline never passes); a host name's 253-character
# limit is checked by length (RE2 has no look-ahead).
_BASE_PATH_RE = linear(r"^[A-Za-z0-9._/{}-]*$")
_HTTP_PATH_RE = linear(r"^/[A-Za-z0-9._~/-]{0,200}$")
_QUANTITY_RE = linear(r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_HOST_RE = linear(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
_BASE_BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10")


@dataclass(frozen=True)
class MetricNames:
    """The series a service exposes: one counter with an outcome label and one histogram."""

    counter: str
    label: str
    histogram: str
    error_matcher: str  # label matcher selecting failed requests or jobs


def check_request(req: ServiceRequest) -> None:
    """Reject values that would end up broken in a manifest or in source code; the message
    names the field, the rule and an example."""
    problems = []
    for field in ("liveness_path", "readiness_path"):
        value = getattr(req, field)
        if not _HTTP_PATH_RE.fullmatch(value) or value == "/metrics":
            problems.append(
                f"{field} {value!r} must be an absolute URL path of letters, digits and "
                "'._~/-' other than /metrics, e.g. '/healthz'"
            )
    for field in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
        value = getattr(req, field)
        if not _QUANTITY_RE.fullmatch(value):
            example = "'250m'" if field.startswith("cpu") else "'256Mi'"
            problems.append(f"{field} {value!r} is not a Kubernetes quantity, e.g. {example}")
    host = req.ingress_host
    if host is not None and (len(host) > 253 or not _HOST_RE.fullmatch(host)):
        problems.append(
            f"ingress_host {req.ingress_host!r} must be a lower-case DNS name with a dot, "
            f"e.g. '{req.name}.example.com'"
        )
    if problems:
        raise ValueError("; ".join(problems))


def language_of(req: ServiceRequest) -> str:
    """The request's language, python when the request left it open."""
    return req.language or DEFAULT_LANGUAGE


def template_set_of(template_set: TemplateSet | None) -> TemplateSet:
    """The set to render with: the built-in one unless the repository's config named one."""
    return template_set or builtin_set()


def profile_of(req: ServiceRequest, template_set: TemplateSet | None = None) -> LanguageProfile:
    """The request's language profile in `template_set`; a ValueError names what it offers."""
    return template_set_of(template_set).profile(language_of(req), req.type)


def service_dir(req: ServiceRequest, base_path: str = DEFAULT_BASE_PATH) -> str:
    """The service's folder inside the repository ('' for the repository root).

    `base_path` may hold `{name}` and `{team}`; it must stay inside the repository.
    """
    if not _BASE_PATH_RE.fullmatch(base_path):
        raise ValueError(
            f"base path {base_path!r} may hold only letters, digits, '.', '_', '-', '/' and "
            "the placeholders {name} and {team}; e.g. 'services/{name}'"
        )
    path = base_path.replace("{name}", req.name).replace("{team}", req.team)
    if "{" in path or "}" in path:
        raise ValueError(f"base path {base_path!r}: only {{name}} and {{team}} are placeholders")
    if path.startswith("/") or ".." in path.split("/"):
        raise ValueError(
            f"base path {base_path!r} must be relative and stay inside the repository; "
            "e.g. 'services/{name}'"
        )
    path = posixpath.normpath(path) if path else "."
    return "" if path == "." else path


def join(directory: str, *parts: str) -> str:
    """A repository path under `directory` ('' is the repository root)."""
    return posixpath.join(directory, *parts) if directory else posixpath.join(*parts)


def workflow_path(req: ServiceRequest) -> str:
    """The service's CI workflow: GitHub only reads workflows at the repository root."""
    return f".github/workflows/{req.name}.yml"


def selector_labels(req: ServiceRequest) -> dict[str, str]:
    """Labels that select the service's pods. Kept to the two that never change, because a
    Deployment's selector is immutable."""
    return {"app.kubernetes.io/name": req.name, "app.kubernetes.io/instance": req.name}


def pod_labels(req: ServiceRequest) -> dict[str, str]:
    """Labels on every object and pod of the service: the selector plus ownership."""
    return {
        **selector_labels(req),
        "app.kubernetes.io/component": req.type,
        "app.kubernetes.io/part-of": req.team,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def metadata(req: ServiceRequest, name: str | None = None) -> dict[str, Any]:
    return {"name": name or req.name, "labels": pod_labels(req)}


def namespace_for(req: ServiceRequest, environment: str) -> str:
    """`<prefix><team>-<environment>`, shortened to the 63 characters a namespace allows.
    The overlays, the runbook and the cluster tools all use this one name."""
    team = f"{req.namespace_prefix}{req.team}"[: 62 - len(environment)].rstrip("-")
    return f"{team}-{environment}"


def image_repository(req: ServiceRequest, repository: str | None = None) -> str:
    """The image without tag: `repository` when given, else GHCR under a placeholder owner."""
    return repository or f"ghcr.io/{DEFAULT_IMAGE_OWNER}/{req.name}"


def metric_names(req: ServiceRequest) -> MetricNames:
    if req.type == "worker":
        return MetricNames("jobs_total", "outcome", "job_duration_seconds", 'outcome="failure"')
    return MetricNames(
        "http_requests_total", "code", "http_request_duration_seconds", 'code=~"5.."'
    )


def slo_bucket(req: ServiceRequest) -> str:
    """The latency objective in seconds, written the way the histogram's `le` label is."""
    return format(Decimal(req.latency_p99_ms).scaleb(-3).normalize(), "f")


def latency_buckets(req: ServiceRequest) -> list[str]:
    """Histogram bounds: the usual ones plus the latency objective, so that the latency
    alert reads an exact bucket instead of an interpolation."""
    labels = {Decimal(b): b for b in _BASE_BUCKETS}
    labels.setdefault(Decimal(slo_bucket(req)), slo_bucket(req))
    return [labels[key] for key in sorted(labels)]


def summary(req: ServiceRequest) -> str:
    """One generated sentence about the service, safe in any file format."""
    kinds = {"api": "an HTTP API", "worker": "a background worker", "web": "a web frontend"}
    return f"{kinds[req.type]} owned by the {req.team} team."


def template_context(
    req: ServiceRequest,
    base_path: str = DEFAULT_BASE_PATH,
    template_set: TemplateSet | None = None,
) -> dict[str, Any]:
    """Everything the text templates may use."""
    check_request(req)
    language = language_of(req)
    return {
        **req.model_dump(),
        "language": language,
        "profile": profile_of(req, template_set),
        "uid": RUN_AS_ID,
        "version": INITIAL_VERSION,
        "summary": summary(req),
        "metrics": metric_names(req),
        "buckets": latency_buckets(req),
        "slo_bucket": slo_bucket(req),
        "service_dir": service_dir(req, base_path),
        "workflow_path": workflow_path(req),
        "namespaces": {env: namespace_for(req, env) for env in ENVIRONMENTS},
    }


class _Dumper(yaml.SafeDumper):
    """Block-style YAML with indented lists and literal blocks for multi-line strings."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        # GitHub Actions and many linters reject YAML anchors; repeat the value instead.
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(*docs: Any, comment: str = "") -> str:
    """YAML text for one or more documents, keys in the order given, an optional comment on
    top (one `# ` line per line of `comment`)."""
    body = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
    header = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
    return header + body


def markdown_text(value: str, limit: int = 500) -> str:
    """User text for a markdown file: one line, no HTML, no markup, no @-mentions."""
    text = " ".join(value.split())[:limit]
    text = re.sub(r"([\\`*_{}\[\]<>()#+!|~])", r"\\\1", text)
    return text.replace("@", "&#64;")
