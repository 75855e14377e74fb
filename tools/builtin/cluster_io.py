"""What the cluster tools take and return (tools/builtin/cluster.py): the models the
registry turns into JSON schemas for the model, with the name rule checked on the way in."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from app.domain.service import NAME_RE, NAME_RULE, suggest_name


def _check_name(value: str, what: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(f"{NAME_RULE} ({what}); try '{suggest_name(value)}'")
    return value


class NamespaceInput(BaseModel):
    """Which service the staging namespace is for; the namespace itself is the operator's."""

    name: str | None = Field(
        None, description="Service the namespace is for (the name is one per repository)"
    )
    environment: Literal["staging"] = Field("staging", description="Only staging for now")
    team: str | None = Field(None, description="Owning team, set as the `team` label")

    @field_validator("name", "team")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value, "name")


class NamespaceOutput(BaseModel):
    namespace: str
    environment: str
    labels: dict[str, str]
    dry_run: bool
    summary: str


class DeployInput(BaseModel):
    """Which service to deploy, and (rarely) where its base manifests are. The namespace is
    not an argument: the operator's rule derives it from the repository."""

    service: str = Field(description="Service name, e.g. payments-api")
    manifests_dir: str | None = Field(
        None, description="Folder of the base manifests; default services/SERVICE/k8s/base"
    )

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        return _check_name(value, "service name")

    @field_validator("manifests_dir")
    @classmethod
    def _dir(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().strip("/")
        if not value or ".." in value.split("/"):
            raise ValueError("manifests_dir must be a relative folder without '..'")
        return value


class AppliedObject(BaseModel):
    kind: str
    name: str
    namespace: str
    outcome: Literal["applied", "accepted by dry run", "waiting for namespace"]


class DeployOutput(BaseModel):
    service: str
    namespace: str
    dry_run: bool
    image: str | None = Field(None, description="The image tag deployed, sha-<commit>")
    rollout: str = Field("", description="How the rollout ended; empty for a dry run")
    objects: list[AppliedObject]
    summary: str
