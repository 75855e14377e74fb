"""Render a whole service from a `ServiceRequest`: Dockerfile, app source, Kubernetes
manifests, CI workflow, observability and docs, as `{repository path: file text}`.

Every renderer is pure and may be called alone (the tools that generate one part do so).
`python -m tools.render --all OUTDIR` writes every language × type into OUTDIR, for the
policy checkers run by `make check-generated`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.domain.service import LANGUAGES, SERVICE_TYPES, ServiceRequest
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
    service_dir,
    template_context,
)
from tools.render_k8s import StagingPlace, has_service, ingress_host, max_replicas, render_k8s
from tools.render_observability import render_observability
from tools.render_workflow import render_workflow
from tools.templates import PROFILES, render_template

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


def render_dockerfile(req: ServiceRequest, base_path: str = DEFAULT_BASE_PATH) -> dict[str, str]:
    """The multi-stage, non-root `Dockerfile` and its `.dockerignore`."""
    ctx = template_context(req, base_path)
    root = ctx["service_dir"]
    return {
        join(root, "Dockerfile"): render_template(f"{ctx['language']}/Dockerfile.j2", **ctx),
        join(root, ".dockerignore"): render_template("common/dockerignore.j2", **ctx),
    }


def render_source(req: ServiceRequest, base_path: str = DEFAULT_BASE_PATH) -> dict[str, str]:
    """A minimal app that serves health, readiness and metrics, with a test: enough for the
    workflow and the image build to pass on the first run."""
    ctx = template_context(req, base_path)
    profile = PROFILES[ctx["language"]]
    return {
        join(ctx["service_dir"], path): render_template(template, **ctx)
        for path, template in profile.sources.items()
    }


def catalog_info(req: ServiceRequest) -> dict:
    """The Backstage Component entity."""
    meta: dict = {
        "name": req.name,
        "description": " ".join(req.description.split())[:300] or f"{req.name} {req.type}",
        "tags": [language_of(req), req.type],
        "annotations": {
            "backstage.io/kubernetes-id": req.name,
            "backstage.io/kubernetes-label-selector": f"app.kubernetes.io/name={req.name}",
        },
    }
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": meta,
        "spec": {"type": "service", "lifecycle": "experimental", "owner": req.team},
    }


def render_docs(req: ServiceRequest, base_path: str = DEFAULT_BASE_PATH) -> dict[str, str]:
    """`README.md`, `docs/runbook.md` and the Backstage `catalog-info.yaml`."""
    ctx = template_context(req, base_path)
    units = {"api": "requests", "web": "requests", "worker": "jobs"}
    ctx.update(
        summary_md=markdown_text(ctx["summary"]),
        description_md=markdown_text(req.description),
        max_replicas_eff=max_replicas(req),
        has_service=has_service(req),
        monitor_kind="ServiceMonitor" if has_service(req) else "PodMonitor",
        source_paths=list(PROFILES[ctx["language"]].sources),
        ingress_namespace=INGRESS_NAMESPACE,
        monitoring_namespace=MONITORING_NAMESPACE,
        ingress_class=INGRESS_CLASS,
        host=ingress_host(req),
        unit=units[req.type],
        alert_prefix="".join(part.capitalize() for part in req.name.split("-")),
        budget_percent=round(100 - req.availability_slo, 4),
    )
    root = ctx["service_dir"]
    return {
        join(root, "README.md"): render_template("common/README.md.j2", **ctx),
        join(root, "docs", "runbook.md"): render_template("common/runbook.md.j2", **ctx),
        join(root, "catalog-info.yaml"): dump_yaml(catalog_info(req)),
    }


def render_service(
    req: ServiceRequest,
    base_path: str = DEFAULT_BASE_PATH,
    *,
    image: str | None = None,
    staging: StagingPlace | None = None,
) -> dict[str, str]:
    """Every file of a new service, path → text. `image` is the image repository without a
    tag (default `ghcr.io/your-org/<name>`); the workflow pushes to the repository owner's.
    `staging` is the operator's staging namespace and host for the repository."""
    check_request(req)
    service_dir(req, base_path)  # reject a bad base path before rendering anything
    files: dict[str, str] = {}
    files.update(render_dockerfile(req, base_path))
    files.update(render_source(req, base_path))
    files.update(render_k8s(req, base_path, image=image, staging=staging))
    files.update(render_workflow(req, base_path))
    files.update(render_observability(req, base_path))
    files.update(render_docs(req, base_path))
    return files


def all_combinations(name_format: str = "{language}-{type}") -> list[ServiceRequest]:
    """One request per language × type, with the defaults a user would get."""
    return [
        ServiceRequest(name=name_format.format(language=lang, type=kind), language=lang, type=kind)
        for lang in LANGUAGES
        for kind in SERVICE_TYPES
    ]


def write_files(files: dict[str, str], outdir: Path) -> None:
    for path, text in files.items():
        target = outdir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def main(argv: list[str] | None = None) -> int:
    """`python -m tools.render --all OUTDIR`: render every language × type into OUTDIR."""
    parser = argparse.ArgumentParser(prog="python -m tools.render", description=main.__doc__)
    parser.add_argument("--all", dest="outdir", type=Path, required=True, metavar="OUTDIR")
    args = parser.parse_args(argv)
    for req in all_combinations():
        write_files(render_service(req), args.outdir)
    print(f"rendered {len(LANGUAGES) * len(SERVICE_TYPES)} services into {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
