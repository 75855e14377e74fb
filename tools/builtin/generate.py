"""The generating tools of the original prototype: check the request, list the templates,
and render a service (whole or by part) into the session's workspace of files.

All are pure (side effect "none"): each returns `files` (path → text), which the loop merges
into the session, plus a one-line `summary` for the todo. Publishing and validation of the
whole set happen in `open_pull_request`; `validate_generated_files` runs the same validators
on demand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from app.domain.service import (
    LANGUAGES,
    NAME_RE,
    NAME_RULE,
    SERVICE_TYPES,
    ServiceRequest,
    suggest_name,
)
from tools.render import (
    render_dockerfile,
    render_docs,
    render_k8s,
    render_observability,
    render_service,
    render_source,
    render_workflow,
)
from tools.render_common import DEFAULT_BASE_PATH, language_of
from tools.render_k8s import StagingPlace
from tools.spec import ToolContext, ToolError, ToolSpec
from tools.staging import StagingPolicy, StagingPolicyError
from tools.template_sets import TemplateSet, TemplateSetError
from tools.template_sets.sources import TemplateSetCatalog
from tools.templates import BUILTIN_SET, PROFILES
from tools.validate import Finding, is_workflow, start_zizmor_early, validate_files

_TYPE_ALIASES = {
    "service": "api", "http": "api", "rest": "api", "backend": "api", "grpc": "api",
    "frontend": "web", "website": "web", "ui": "web", "webapp": "web",
    "job": "worker", "consumer": "worker", "queue": "worker", "background": "worker",
}  # fmt: skip
_LANGUAGE_ALIASES = {
    "py": "python", "python3": "python", "golang": "go",
    "nodejs": "node", "node.js": "node", "javascript": "node", "js": "node", "jvm": "java",
}  # fmt: skip


class ServiceInput(ServiceRequest):
    """The service request plus where its files go."""

    base_path: str = Field(
        DEFAULT_BASE_PATH,
        description="Folder of the service in the repository; may hold {name} and {team}",
    )
    # The repository's `templates:` config decides these (fixed tool arguments), not the model.
    template_set: str = Field(BUILTIN_SET, description="Template set named by the repo config")
    template_version: str | None = Field(None, description="Its version; None: the current one")


class GeneratedFiles(BaseModel):
    files: dict[str, str] = Field(description="Repository path → file text")
    summary: str


class NameAndTypeInput(BaseModel):
    name: str = Field(description="The service name as the requester wrote it")
    type: str = Field("api", description="api, worker or web")
    language: str | None = Field(
        None, description="python, go, node, java, or another language of the template set"
    )
    # The repository's `templates:` config decides these (fixed tool arguments), not the model.
    template_set: str = Field(BUILTIN_SET, description="Template set named by the repo config")
    template_version: str | None = Field(None, description="Its version; None: the current one")


class NameAndTypeOutput(BaseModel):
    ok: bool
    name: str
    type: Literal["api", "worker", "web"]
    language: str | None
    missing: list[str] = Field(default_factory=list, description="Fields still to ask for")
    summary: str


class ListTemplatesInput(BaseModel):
    pass


class TemplateInfo(BaseModel):
    language: str
    type: str
    build_image: str
    runtime_image: str


class ListTemplatesOutput(BaseModel):
    templates: list[TemplateInfo]
    summary: str


class ValidateFilesInput(BaseModel):
    paths: list[str] | None = Field(None, description="Only these paths; default all files")


class ValidateFilesOutput(BaseModel):
    ok: bool
    table: str = Field(description="Markdown table: validator, files checked, result")
    findings: list[Finding]
    summary: str


async def validate_project_name_and_type(
    args: NameAndTypeInput, ctx: ToolContext
) -> NameAndTypeOutput:
    """Normalize name, type and language; a bad value raises with the rule and a fix. The
    languages are those of the repository's template set."""
    name = args.name.strip().lower()
    if not NAME_RE.fullmatch(name):
        raise ToolError(f"{NAME_RULE}; try '{suggest_name(args.name)}'")
    kind = _TYPE_ALIASES.get(args.type.strip().lower(), args.type.strip().lower())
    if kind not in SERVICE_TYPES:
        raise ToolError(f"type {args.type!r} is not one of {', '.join(SERVICE_TYPES)}")
    language = None
    if args.language:
        tset = await _template_set(args, ctx)
        languages = tset.languages()
        raw = args.language.strip().lower()
        language = raw if raw in languages else _LANGUAGE_ALIASES.get(raw, raw)
        if language not in languages:
            where = "" if tset.name == BUILTIN_SET else f" in the {tset.label}"
            raise ToolError(
                f"language {args.language!r} has no template{where}; choose {', '.join(languages)}"
            )
    missing = [] if language else ["language"]
    what = f"{language} {kind}" if language else f"{kind} (language still open)"
    return NameAndTypeOutput(
        ok=True,
        name=name,
        type=kind,
        language=language,
        missing=missing,
        summary=f"`{name}` is a valid name for a {what}",
    )


def list_templates(args: ListTemplatesInput, ctx: ToolContext) -> ListTemplatesOutput:
    templates = [
        TemplateInfo(
            language=lang,
            type=kind,
            build_image=PROFILES[lang].build_image,
            runtime_image=PROFILES[lang].runtime_image,
        )
        for lang in LANGUAGES
        for kind in SERVICE_TYPES
    ]
    return ListTemplatesOutput(
        templates=templates,
        summary=f"{len(templates)} templates: {', '.join(LANGUAGES)} × {', '.join(SERVICE_TYPES)}",
    )


def _image(args: ServiceInput, ctx: ToolContext) -> str | None:
    # GHCR image names are lower case; the workflow pushes under the repository owner.
    return f"ghcr.io/{ctx.repo.owner.lower()}/{args.name}" if ctx.repo else None


def _staging(args: ServiceInput, ctx: ToolContext) -> StagingPlace | None:
    """The operator's staging namespace and host for this repository, which the staging
    overlay names and the deploy checks (tools/staging.py)."""
    if ctx.repo is None:
        return None
    try:
        policy = StagingPolicy.from_settings(ctx.settings)
    except StagingPolicyError as exc:
        raise ToolError(f"The operator's staging settings are invalid: {exc}.") from None
    return StagingPlace(policy.namespace_for(ctx.repo.full_name), policy.staging_host(args.name))


def _generated(
    args: ServiceInput, ctx: ToolContext, render: Callable[[], dict[str, str]], what: str
) -> GeneratedFiles:
    try:
        files = render()
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    ctx.files.update(files)
    if any(is_workflow(path) for path in files):
        # zizmor, the slowest validator, runs while the other generators do; publishing
        # the same workflows takes its findings.
        start_zizmor_early(ctx.files)
    return GeneratedFiles(
        files=files,
        summary=f"{what} for `{args.name}` ({language_of(args)} {args.type}): {len(files)} files",
    )


def _request(args: ServiceInput) -> ServiceRequest:
    return ServiceRequest(
        **args.model_dump(exclude={"base_path", "template_set", "template_version"})
    )


async def _template_set(args: ServiceInput | NameAndTypeInput, ctx: ToolContext) -> TemplateSet:
    """The repository's template set, read through the forge and checked once per ref."""
    catalog = TemplateSetCatalog.from_settings(ctx.settings)
    try:
        installation = ctx.repo.installation_id if ctx.repo is not None else None
        return await catalog.load(ctx.forge, args.template_set, args.template_version, installation)
    except TemplateSetError as exc:
        raise ToolError(str(exc)) from None


async def _render_for_staging(
    args: ServiceInput, ctx: ToolContext, render: Callable[..., dict[str, str]], what: str
) -> GeneratedFiles:
    """`render` (the service or its manifests) with the image and staging overlay it needs,
    off the event loop."""
    req, tset = _request(args), await _template_set(args, ctx)
    return await asyncio.to_thread(
        _generated,
        args,
        ctx,
        lambda: render(
            req,
            args.base_path,
            image=_image(args, ctx),
            staging=_staging(args, ctx),
            template_set=tset,
        ),
        what,
    )


async def apply_template(args: ServiceInput, ctx: ToolContext) -> GeneratedFiles:
    return await _render_for_staging(args, ctx, render_service, "Service from template")


async def generate_k8s_manifests(args: ServiceInput, ctx: ToolContext) -> GeneratedFiles:
    return await _render_for_staging(args, ctx, render_k8s, "Kubernetes base and overlays")


async def setup_cicd_pipeline(args: ServiceInput, ctx: ToolContext) -> GeneratedFiles:
    """The workflow plus what it builds: the Dockerfile and the starter app with its test."""
    req, tset = _request(args), await _template_set(args, ctx)

    def render() -> dict[str, str]:
        return {
            **render_workflow(req, args.base_path, tset),
            **render_dockerfile(req, args.base_path, tset),
            **render_source(req, args.base_path, tset),
        }

    # Rendering is CPU work: off the event loop, as the registry runs synchronous tools.
    return await asyncio.to_thread(
        _generated, args, ctx, render, "CI workflow, Dockerfile and starter app"
    )


def setup_observability(args: ServiceInput, ctx: ToolContext) -> GeneratedFiles:
    req = _request(args)
    return _generated(
        args,
        ctx,
        lambda: render_observability(req, args.base_path),
        "Scrape config, SLO alerts and dashboard",
    )


async def generate_documentation(args: ServiceInput, ctx: ToolContext) -> GeneratedFiles:
    req, tset = _request(args), await _template_set(args, ctx)
    return await asyncio.to_thread(
        _generated,
        args,
        ctx,
        lambda: render_docs(req, args.base_path, tset),
        "README, runbook and catalog entry",
    )


def validate_generated_files(args: ValidateFilesInput, ctx: ToolContext) -> ValidateFilesOutput:
    """Every validator on the workspace; failing files raise with the validators' messages."""
    files = (
        ctx.files if args.paths is None else {p: ctx.files[p] for p in args.paths if p in ctx.files}
    )
    if not files:
        raise ToolError("no generated files to validate yet: generate the service first")
    report = validate_files(dict(files))
    if not report.ok:
        raise ToolError("validation failed:\n" + report.failure_summary(limit=10))
    return ValidateFilesOutput(
        ok=True,
        table=report.as_markdown_table(),
        findings=report.findings,
        summary=f"{len(files)} files passed every validator in {report.seconds:.1f}s",
    )


def _spec(
    func: Callable[..., BaseModel],
    description: str,
    input_model: type[BaseModel],
    output_model: type[BaseModel],
    aliases: list[str],
) -> ToolSpec:
    return ToolSpec(
        name=func.__name__,
        description=description,
        input_model=input_model,
        output_model=output_model,
        func=func,
        aliases=aliases,
        side_effect="none",
    )


TOOLS: list[ToolSpec] = [
    _spec(
        validate_project_name_and_type,
        "Check a service name (DNS-1123), type and language; returns the normalized values "
        "or the rule broken and a corrected suggestion.",
        NameAndTypeInput,
        NameAndTypeOutput,
        ["validate_name", "validate_service_name"],
    ),
    _spec(
        list_templates,
        "List the service templates: every language and service type with its base images.",
        ListTemplatesInput,
        ListTemplatesOutput,
        ["list_service_templates"],
    ),
    _spec(
        apply_template,
        "Render a whole service: Dockerfile, starter app, Kubernetes manifests, CI workflow, "
        "observability and docs.",
        ServiceInput,
        GeneratedFiles,
        ["scaffold_service", "render_service"],
    ),
    _spec(
        generate_k8s_manifests,
        "Render k8s/base (Deployment, Service, Ingress, HPA, PDB, NetworkPolicy, "
        "ServiceAccount) and the staging and production kustomize overlays.",
        ServiceInput,
        GeneratedFiles,
        ["generate_manifests", "generate_kubernetes_manifests"],
    ),
    _spec(
        setup_cicd_pipeline,
        "Render the GitHub Actions workflow (lint, test, build and push to GHCR) with the "
        "Dockerfile and starter app it builds.",
        ServiceInput,
        GeneratedFiles,
        ["create_ci_pipeline", "setup_ci", "generate_workflow"],
    ),
    _spec(
        setup_observability,
        "Render the ServiceMonitor (PodMonitor for workers), SLO burn-rate alerts and a "
        "Grafana dashboard.",
        ServiceInput,
        GeneratedFiles,
        ["setup_monitoring", "generate_observability"],
    ),
    _spec(
        generate_documentation,
        "Render the service README, the on-call runbook and the Backstage catalog-info.yaml.",
        ServiceInput,
        GeneratedFiles,
        ["generate_docs", "create_documentation"],
    ),
    _spec(
        validate_generated_files,
        "Run every validator (YAML, Kubernetes strict schemas, workflow schema, zizmor, "
        "objects working together) on the generated files.",
        ValidateFilesInput,
        ValidateFilesOutput,
        ["validate_files", "validate_manifests"],
    ),
]
