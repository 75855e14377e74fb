"""The service request: what the developer asked for, the single input of every renderer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from app.untrusted import linear, replace_all

# Which languages exist is the template set's to say (tools/template_sets); a request only
# needs a plausible language word. LANGUAGES are the built-in set's.
LANGUAGE_RE = linear(r"^[a-z][a-z0-9-]{0,19}$")
Language = Annotated[str, StringConstraints(pattern=LANGUAGE_RE.pattern)]
ServiceType = Literal["api", "worker", "web"]
LANGUAGES: tuple[str, ...] = ("python", "go", "node", "java")
SERVICE_TYPES: tuple[str, ...] = ("api", "worker", "web")

# Kubernetes object names (DNS-1123 label): lower-case alphanumerics and '-', 63 at most,
# starting with a letter here so the name is also a valid image and Backstage component name.
# RE2 (linear time); its `$` is the end of the text, so "name\n" fails `match` too.
NAME_RE = linear(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
NAME_RULE = (
    "a service name must be 1-63 characters of lower-case letters, digits and '-', "
    "start with a letter and end with a letter or digit"
)

TEAM_RULE = "a team name follows the service-name rule"

_NOT_NAME_RE = linear(rb"[^a-z0-9-]+")
_DASHES_RE = linear(rb"-{2,}")


def checked_name(value: str, rule: str = NAME_RULE) -> str:
    """`value` if it is a valid name; else a ValueError naming `rule` and the closest valid
    name (for the pydantic validators of services, teams and repositories)."""
    if not NAME_RE.fullmatch(value):
        raise ValueError(f"{rule}; try '{suggest_name(value)}'")
    return value


def suggest_name(raw: str) -> str:
    """The closest valid name to `raw` (lower-cased, other characters to '-')."""
    name = replace_all(_NOT_NAME_RE, raw[:256].strip().lower(), "-")
    name = replace_all(_DASHES_RE, name, "-").strip("-")
    name = name.lstrip("-0123456789")[:63].rstrip("-")
    return name or "my-service"


class ServiceRequest(BaseModel):
    """A new service: name and kind, plus the values a reviewer may change with `/idp set`."""

    name: str = Field(description="DNS-1123 service name, e.g. payments-api")
    language: Language | None = Field(
        None,
        description="python, go, node, java or a language of the repository's template set",
    )
    type: ServiceType = Field("api", description="api, worker or web")
    team: str = Field("platform", description="Owning team (Backstage owner)")
    port: int = Field(8080, ge=1024, le=65535, description="Container port")
    replicas: int = Field(2, ge=1, le=50, description="Minimum replicas (HPA minimum)")
    max_replicas: int = Field(6, ge=1, le=200)
    cpu_request: str = "100m"
    cpu_limit: str = "500m"
    memory_request: str = "128Mi"
    memory_limit: str = "256Mi"
    ingress_host: str | None = None
    liveness_path: str = "/healthz"
    readiness_path: str = "/readyz"
    availability_slo: float = Field(99.9, gt=50, lt=100)
    latency_p99_ms: int = Field(300, ge=1)
    description: str = ""
    namespace_prefix: str = Field(
        "",
        pattern=r"^([a-z0-9][a-z0-9-]{0,19})?$",
        description="Prepended to the team's namespaces (the repo config's staging prefix)",
    )

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        return checked_name(value)

    @field_validator("team")
    @classmethod
    def _team_name(cls, value: str) -> str:
        return checked_name(value, TEAM_RULE)
