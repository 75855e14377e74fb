"""Render a whole service from a `ServiceRequest`: Dockerfile, app source, Kubernetes
manifests, CI workflow, observability and docs, as `{repository path: file text}`.

Every renderer is pure and may be called alone (the tools that generate one part do so).
Each takes the repository's template set (tools/template_sets; None: the built-in one).
`python -m tools.render_all --all OUTDIR [--set DIR ...]` writes every language × type of the
built-in set and of each set folder into OUTDIR, for the policy checkers run by
`make check-generated`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from app.domain.service import ServiceRequest
from tools.render_common import (
    DEFAULT_BASE_PATH,
    INGRESS_CLASS,
    INGRESS_NAMESPACE,
    MONITORING_NAMESPACE,
    check_request,
    dump_yaml,
    join,
    language_of,
    markdown_text,
    profile_of,
    service_dir,
    template_context,
    template_set_of,
)
from tools.render_k8s import StagingPlace, has_service, ingress_host, max_replicas, render_k8s
from tools.render_observability import render_observability
from tools.render_workflow import render_workflow

if TYPE_CHECKING:
    from tools.template_sets import TemplateSet

# Annotations on the Backstage entity that record what the service was rendered from: the
# upgrade (`/idp upgrade`, the sweep) re-renders with a newer version of the same set.
TEMPLATE_SET_ANNOTATION = "idp-copilot.dev/template-set"
TEMPLATE_VERSION_ANNOTATION = "idp-copilot.dev/template-version"
# The request's values that differ from the defaults, as JSON: what an upgrade re-renders the
# service from when no session holds it any more (sessions expire; the repository stays).
REQUEST_ANNOTATION = "idp-copilot.dev/request"

__all__ = [
    "DEFAULT_BASE_PATH",
    "render_dockerfile",
    "render_docs",
    "render_k8s",
    "render_observability",
    "render_service",
    "render_source",
    "render_workflow",
]


def render_dockerfile(
    req: ServiceRequest,
    base_path: str = DEFAULT_BASE_PATH,
    template_set: TemplateSet | None = None,
) -> dict[str, str]:
    """The multi-stage, non-root `Dockerfile` and its `.dockerignore`."""
    tset = template_set_of(template_set)
    ctx = template_context(req, base_path, tset)
    templates = tset.combination(ctx["language"], req.type).templates
    root = ctx["service_dir"]
    return {
        join(root, "Dockerfile"): tset.render(templates.dockerfile, ctx),
        join(root, ".dockerignore"): tset.render(templates.dockerignore, ctx),
    }


def render_source(
    req: ServiceRequest,
    base_path: str = DEFAULT_BASE_PATH,
    template_set: TemplateSet | None = None,
) -> dict[str, str]:
    """A minimal app that serves health, readiness and metrics, with a test: enough for the
    workflow and the image build to pass on the first run."""
    tset = template_set_of(template_set)
    ctx = template_context(req, base_path, tset)
    return {
        join(ctx["service_dir"], path): tset.render(template, ctx)
        for path, template in ctx["profile"].sources.items()
    }


def catalog_info(req: ServiceRequest, template_set: TemplateSet | None = None) -> dict:
    """The Backstage Component entity, with the template set and version it came from."""
    tset = template_set_of(template_set)
    meta: dict = {
        "name": req.name,
        "description": " ".join(req.description.split())[:300] or f"{req.name} {req.type}",
        "tags": [language_of(req), req.type],
        "annotations": {
            "backstage.io/kubernetes-id": req.name,
            "backstage.io/kubernetes-label-selector": f"app.kubernetes.io/name={req.name}",
            TEMPLATE_SET_ANNOTATION: tset.name,
            TEMPLATE_VERSION_ANNOTATION: tset.version,
            REQUEST_ANNOTATION: json.dumps(
                req.model_dump(mode="json", exclude_defaults=True, exclude={"name"}),
                sort_keys=True,
                separators=(",", ":"),
            ),
        },
    }
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": meta,
        "spec": {"type": "service", "lifecycle": "experimental", "owner": req.team},
    }


def render_docs(
    req: ServiceRequest,
    base_path: str = DEFAULT_BASE_PATH,
    template_set: TemplateSet | None = None,
) -> dict[str, str]:
    """`README.md`, `docs/runbook.md` and the Backstage `catalog-info.yaml`."""
    tset = template_set_of(template_set)
    ctx = template_context(req, base_path, tset)
    units = {"api": "requests", "web": "requests", "worker": "jobs"}
    ctx.update(
        summary_md=markdown_text(ctx["summary"]),
        description_md=markdown_text(req.description),
        max_replicas_eff=max_replicas(req),
        has_service=has_service(req),
        monitor_kind="ServiceMonitor" if has_service(req) else "PodMonitor",
        source_paths=list(ctx["profile"].sources),
        ingress_namespace=INGRESS_NAMESPACE,
        monitoring_namespace=MONITORING_NAMESPACE,
        ingress_class=INGRESS_CLASS,
        host=ingress_host(req),
        unit=units[req.type],
        alert_prefix="".join(part.capitalize() for part in req.name.split("-")),
        budget_percent=round(100 - req.availability_slo, 4),
    )
    root = ctx["service_dir"]
    templates = tset.combination(ctx["language"], req.type).templates
    return {
        join(root, "README.md"): tset.render(templates.readme, ctx),
        join(root, "docs", "runbook.md"): tset.render(templates.runbook, ctx),
        join(root, "catalog-info.yaml"): dump_yaml(catalog_info(req, tset)),
    }


def render_service(
    req: ServiceRequest,
    base_path: str = DEFAULT_BASE_PATH,
    *,
    image: str | None = None,
    staging: StagingPlace | None = None,
    template_set: TemplateSet | None = None,
) -> dict[str, str]:
    """Every file of a new service, path → text. `image` is the image repository without a
    tag (default `ghcr.io/your-org/<name>`); the workflow pushes to the repository owner's.
    `staging` is the operator's staging namespace and host for the repository.

    All files are rendered in memory and returned together: a failing template or parameter
    raises before anything is returned, so a service is never half-rendered."""
    tset = template_set_of(template_set)
    check_request(req)
    service_dir(req, base_path)  # reject a bad base path before rendering anything
    tset.check_parameters(req, language_of(req))
    profile_of(req, tset)  # a language the set lacks is named before any file
    files: dict[str, str] = {}
    files.update(render_dockerfile(req, base_path, tset))
    files.update(render_source(req, base_path, tset))
    files.update(render_k8s(req, base_path, image=image, staging=staging, template_set=tset))
    files.update(render_workflow(req, base_path, tset))
    files.update(render_observability(req, base_path))
    files.update(render_docs(req, base_path, tset))
    return files


def all_combinations(
    name_format: str = "{language}-{type}", template_set: TemplateSet | None = None
) -> list[ServiceRequest]:
    """One request per language × type of the set, with the defaults a user would get."""
    return [
        ServiceRequest(name=name_format.format(language=lang, type=kind), language=lang, type=kind)
        for lang, kind in template_set_of(template_set).combinations()
    ]


def write_files(files: dict[str, str], outdir: Path) -> None:
    for path, text in files.items():
        target = outdir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
