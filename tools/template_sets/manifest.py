"""`template-set.yaml`: what a template set holds, parsed at the edge into typed models.

A set is a folder with this manifest at its root. Each combination names a language, the
service types it serves, the JSON Schema the request's parameters must pass, the language
profile (images, CI commands) and the Jinja templates of every file it writes. Paths are
relative to the set's folder.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.domain.service import LANGUAGE_RE, SERVICE_TYPES
from app.untrusted import linear

MANIFEST_NAME = "template-set.yaml"
SET_NAME_RE = linear(r"^[a-z][a-z0-9-]{0,39}$")
# Semantic versions without build metadata: what a repository pins and a tag `v<version>` names.
VERSION_RE = linear(r"^\d{1,6}\.\d{1,6}\.\d{1,6}(-[0-9A-Za-z.-]{1,40})?$")
# A template path: relative, no '..', no hidden tricks; what the set's folder may hold.
TEMPLATE_PATH_RE = linear(
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}){0,5}$"
)
# Paths a template may write inside the service's folder: not the ones the App writes itself
# (its hardened manifests, alerts and catalog entry stay the App's).
OUTPUT_PATH_RE = TEMPLATE_PATH_RE
RESERVED_OUTPUTS = ("Dockerfile", "README.md", "docs/runbook.md", "catalog-info.yaml")
RESERVED_FOLDERS = ("k8s/", "observability/")
# What one version's release note may hold: the upgrade pull request quotes it.
MAX_NOTE_CHARS = 2_000


def version_key(version: str) -> tuple[int, ...]:
    """1.2.3 < 1.10.0, and a pre-release (1.2.3-rc.1) before its release."""
    core, _, pre = version.partition("-")
    return (*(int(part) for part in core.split(".")), 0 if pre else 1)


class _Strict(BaseModel):
    # A misspelt key in a manifest is reported, not silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Profile(_Strict):
    """What a language brings to a service besides its templates: images, CI steps, health
    check. The App renders the Kubernetes objects, the workflow and the alerts itself from
    these values, so its hardening holds for every set."""

    build_image: str = Field(pattern=r"^[a-z0-9][a-z0-9./_:-]{0,200}$")
    runtime_image: str = Field(pattern=r"^[a-z0-9][a-z0-9./_:-]{0,200}$")
    # One of the actions the App pins (tools/render_workflow.py ACTION_PINS, checked when the
    # set is checked); None: the runner's own toolchain. No unpinned action from a set.
    setup_action: str | None
    setup_with: dict[str, str | bool | int] = Field(default_factory=dict)
    lint: list[str] = Field(min_length=1)
    test: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    # The JVM takes seconds to start: a startup probe keeps liveness from killing it early.
    slow_start: bool = False
    tmp_size: str = Field("64Mi", pattern=r"^\d{1,6}(Ki|Mi|Gi)$")


class LanguageProfile(Profile):
    """A combination's profile with its language and source files, as renderers use it."""

    language: str
    # output path (relative to the service folder) -> template path in the set
    sources: dict[str, str]


class Templates(_Strict):
    """The templates every service gets besides its sources."""

    dockerfile: str
    dockerignore: str
    readme: str
    runbook: str

    @model_validator(mode="after")
    def _paths(self) -> Templates:
        for path in self.model_dump().values():
            if not TEMPLATE_PATH_RE.fullmatch(path):
                raise ValueError(f"template path {path!r} is not a plain relative path")
        return self


class Combination(_Strict):
    """One language for one or more service types."""

    language: str = Field(pattern=LANGUAGE_RE.pattern)
    types: list[str] = Field(min_length=1)
    schema_path: str = Field(alias="schema", description="JSON Schema of the request")
    templates: Templates
    # output path (relative to the service folder) -> template path in the set
    sources: dict[str, str] = Field(min_length=1, max_length=50)
    profile: Profile

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        for kind in value:
            if kind not in SERVICE_TYPES:
                raise ValueError(f"type {kind!r} is not one of {', '.join(SERVICE_TYPES)}")
        return value

    @field_validator("schema_path")
    @classmethod
    def _schema(cls, value: str) -> str:
        if not TEMPLATE_PATH_RE.fullmatch(value):
            raise ValueError(f"schema path {value!r} is not a plain relative path")
        return value

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: dict[str, str]) -> dict[str, str]:
        for out, template in value.items():
            if not OUTPUT_PATH_RE.match(out):
                raise ValueError(f"source path {out!r} is not a plain relative path")
            if out in RESERVED_OUTPUTS or out.startswith(RESERVED_FOLDERS):
                raise ValueError(f"source path {out!r} is a file the App writes itself")
            if not TEMPLATE_PATH_RE.fullmatch(template):
                raise ValueError(f"template path {template!r} is not a plain relative path")
        return value

    def language_profile(self) -> LanguageProfile:
        return LanguageProfile(
            language=self.language, sources=self.sources, **self.profile.model_dump()
        )


class Manifest(_Strict):
    """`template-set.yaml`."""

    name: str = Field(pattern=SET_NAME_RE.pattern)
    version: str = Field(pattern=VERSION_RE.pattern)
    # version -> what changed: the upgrade pull request quotes the notes of the versions
    # between the service's and the current one.
    release_notes: dict[str, str]
    combinations: list[Combination] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.version not in self.release_notes:
            raise ValueError(f"release_notes has no entry for the version {self.version}")
        for version, note in self.release_notes.items():
            if not VERSION_RE.fullmatch(version):
                raise ValueError(f"release_notes key {version!r} is not a version like 1.2.0")
            if version_key(version) > version_key(self.version):
                raise ValueError(
                    f"release_notes has {version}, newer than the set's version {self.version}"
                )
            if not note.strip() or len(note) > MAX_NOTE_CHARS:
                raise ValueError(
                    f"release_notes {version} must say what changed in 1 to {MAX_NOTE_CHARS} "
                    "characters"
                )
        seen: set[tuple[str, str]] = set()
        for combo in self.combinations:
            for kind in combo.types:
                if (combo.language, kind) in seen:
                    raise ValueError(f"{combo.language} {kind} is listed twice")
                seen.add((combo.language, kind))
        return self

    def template_paths(self) -> set[str]:
        """Every file the manifest names (templates and schemas)."""
        paths: set[str] = set()
        for combo in self.combinations:
            paths.add(combo.schema_path)
            paths.update(combo.templates.model_dump().values())
            paths.update(combo.sources.values())
        return paths
