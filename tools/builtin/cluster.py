"""Cluster tools: `create_k8s_namespace` and `deploy_to_staging`.

Both wait for approval. Until the session is approved they run against the API server with
`dryRun=All`: the server validates and admits every object but stores nothing, and the output
says so in words, so nothing ever reads as deployed when it was not.

Where they deploy is the operator's (tools/staging.py): one namespace per repository, the
repository's own field manager, the operator's kinds and Ingress domains. What they deploy
is the staging overlay, built in process, running the image CI pushed for the head commit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import yaml

from app.domain.approval import ApprovalScope
from app.domain.plan import ClusterPlan
from tools.builtin.cluster_io import (
    AppliedObject,
    DeployInput,
    DeployOutput,
    NamespaceInput,
    NamespaceOutput,
)
from tools.cluster import FIELD_MANAGER, Cluster, ClusterError, KubernetesCluster
from tools.cluster_plan import in_thread, namespace_plan, objects_plan, unreached
from tools.deploy import (
    YAML_LOADER,
    apply_all,
    files_from_repo,
    files_in,
    parse_manifests,
    staging_objects,
    stuck_reason,
    wait_for_rollouts,
)
from tools.overlay import set_image
from tools.render_k8s import StagingPlace, overlay
from tools.render_workflow import image_tag
from tools.spec import ToolContext, ToolError, ToolSpec
from tools.staging import StagingPolicy, StagingPolicyError, field_manager

DRY_RUN_NOTE = "Dry run: nothing was changed in the cluster; `/idp apply` runs it for real."
MANIFESTS_DIR = "services/{name}/k8s/base"
STAGING_OVERLAY = "overlays/staging/kustomization.yaml"


def namespace_labels(environment: str, team: str | None = None) -> dict[str, str]:
    """Labels of every namespace the App creates: Pod Security `restricted` enforced (and
    warned and audited, so `kubectl` shows why a pod was refused), plus ownership labels that
    NetworkPolicies and cost reports select on."""
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
        "environment": environment,
    }
    if team:
        labels["team"] = team
    return labels


def _cluster(ctx: ToolContext) -> Cluster:
    """The injected cluster, or one built from settings (kept on the context for the run)."""
    if ctx.cluster is None:
        try:
            ctx.cluster = KubernetesCluster.from_settings(ctx.settings)
        except ClusterError as exc:
            raise ToolError(str(exc)) from None
    return ctx.cluster


def _repo_of(ctx: ToolContext) -> str:
    repo = ctx.repo.full_name if ctx.repo is not None else None
    if repo is None and ctx.session is not None:
        repo = ctx.session.repo
    if not repo:
        raise ToolError("the staging namespace derives from the repository, and this run has none.")
    return repo


def _place(ctx: ToolContext) -> tuple[StagingPolicy, str, str]:
    """The operator's policy, this repository's `owner/name` and its staging namespace."""
    try:
        policy = StagingPolicy.from_settings(ctx.settings)
    except StagingPolicyError as exc:
        raise ToolError(f"The operator's staging settings are invalid: {exc}.") from None
    repo = _repo_of(ctx)
    return policy, repo, policy.namespace_for(repo)


def _namespace_request(args: NamespaceInput, ctx: ToolContext) -> tuple[str, str, dict[str, str]]:
    """This repository's `owner/name`, its staging namespace and the namespace's labels."""
    _, repo, name = _place(ctx)
    team = args.team
    if team is None and ctx.session is not None and ctx.session.request is not None:
        team = ctx.session.request.team
    return repo, name, namespace_labels(args.environment, team)


async def create_k8s_namespace(args: NamespaceInput, ctx: ToolContext) -> NamespaceOutput:
    """Create (or update the labels of) this repository's staging namespace."""
    dry_run = not ctx.approved
    repo, name, labels = _namespace_request(args, ctx)
    cluster = _cluster(ctx)
    try:
        await asyncio.to_thread(
            cluster.ensure_namespace,
            name,
            labels,
            dry_run=dry_run,
            field_manager=field_manager(repo),
        )
    except ClusterError as exc:
        raise ToolError(f"namespace {name}: {exc}") from None
    if dry_run:
        summary = f"{DRY_RUN_NOTE} The API server accepted namespace {name}."
    else:
        summary = f"Namespace {name} exists with Pod Security 'restricted' enforced."
    return NamespaceOutput(
        namespace=name,
        environment=args.environment,
        labels=labels,
        dry_run=dry_run,
        summary=summary,
    )


@dataclass
class StagingSet:
    """What a staging deploy applies: the objects of the overlay, in apply order, where."""

    repo: str
    namespace: str
    objects: list[dict[str, Any]]
    image: str | None
    image_note: str


async def staging_set(args: DeployInput, ctx: ToolContext, dry_run: bool) -> StagingSet:
    """The objects `deploy_to_staging` applies, built as it builds them: the base manifests
    (the workspace's, else the repository's), the staging overlay and the CI image."""
    policy, repo, namespace = _place(ctx)
    folder = args.manifests_dir or MANIFESTS_DIR.format(name=args.service)
    sources = files_in(ctx.files, folder)
    # An approved deploy applies only the files whose digest was approved, which the loop
    # passes in; reading others from the repository would apply what nobody saw.
    from_repo = not sources and not ctx.approved
    if from_repo:
        sources = await files_from_repo(ctx, folder)
    if not sources:
        raise ToolError(
            f"no manifests under {folder}/ for {args.service}: generate them first "
            "(generate_k8s_manifests), or pass manifests_dir."
        )
    kustomization = await _staging_overlay(ctx, folder, args.service, policy, from_repo)
    objects = staging_objects(parse_manifests(sources), kustomization, namespace, policy)
    image, image_note = _set_image(ctx, repo, args.service, objects, dry_run)
    return StagingSet(repo, namespace, objects, image, image_note)


async def deploy_to_staging(args: DeployInput, ctx: ToolContext) -> DeployOutput:
    """Build the staging overlay over the service's base manifests and apply it to this
    repository's staging namespace with server-side apply; then wait for the rollout."""
    dry_run = not ctx.approved
    staged = await staging_set(args, ctx, dry_run)
    repo, namespace, objects = staged.repo, staged.namespace, staged.objects
    image, image_note = staged.image, staged.image_note
    cluster = _cluster(ctx)
    applied = await asyncio.to_thread(
        apply_all, cluster, objects, namespace, field_manager(repo), dry_run
    )
    results = [
        AppliedObject(kind=a.kind, name=a.name, namespace=namespace, outcome=a.outcome)  # type: ignore[arg-type]
        for a in applied
    ]
    waiting = [r for r in results if r.outcome == "waiting for namespace"]
    rollout = ""
    if dry_run:
        summary = (
            f"{DRY_RUN_NOTE} The API server accepted {len(results) - len(waiting)} of "
            f"{len(results)} objects for {args.service} in {namespace}."
        )
        if waiting:
            summary += (
                f" {len(waiting)} could not be checked because namespace {namespace} does not "
                "exist yet; create_k8s_namespace creates it on `/idp apply`."
            )
    else:
        rollout = await _rollout(ctx, cluster, objects, namespace, args.service, image)
        summary = f"{rollout} {len(results)} objects applied to {namespace}."
    return DeployOutput(
        service=args.service,
        namespace=namespace,
        dry_run=dry_run,
        image=image,
        rollout=rollout,
        objects=results,
        summary=f"{summary} {image_note}".strip(),
    )


def _set_image(
    ctx: ToolContext, repo: str, service: str, objects: list[dict[str, Any]], dry_run: bool
) -> tuple[str | None, str]:
    """Point the service's containers at the tag the workflow pushed for the head commit of
    the App's branch (`sha-<commit>`). Without a commit there is no image yet: a dry run
    goes on with the base's tag, a real deploy waits for CI."""
    head = ctx.session.head_sha if ctx.session is not None else None
    repository = f"ghcr.io/{repo.split('/', 1)[0].lower()}/{service}"
    if not head:
        if dry_run:
            return None, "No commit yet: the real deploy runs the image CI builds for it."
        raise ToolError(
            f"Waiting for CI: no commit of {service} is published yet, so no image exists to "
            "deploy. Open the pull request first; its workflow builds sha-<commit>."
        )
    tag = image_tag(head)
    if set_image(objects, repository, None, tag) == 0:
        return None, f"No container runs {repository}, so no image tag was changed."
    image = f"{repository}:{tag}"
    return image, (
        f"Image {image}: pushed by the `{service}` workflow for commit {head[:12]}; "
        "if it is not there yet the rollout reports the pull error."
    )


def namespace_scope(
    args: NamespaceInput, files: dict[str, str], repo: Any, settings: Any
) -> ApprovalScope:
    """What `/idp apply` approves for create_k8s_namespace: this repository's namespace."""
    return ApprovalScope(f"namespace `{_scope_namespace(repo, settings)}`")


def deploy_scope(
    args: DeployInput, files: dict[str, str], repo: Any, settings: Any
) -> ApprovalScope:
    """What `/idp apply` approves for deploy_to_staging: the namespace, the base manifests
    and the staging overlay built over them."""
    folder = args.manifests_dir or MANIFESTS_DIR.format(name=args.service)
    applied = files_in(files, folder)
    overlay_path = _overlay_path(folder)
    if overlay_path in files:
        applied[overlay_path] = files[overlay_path]
    return ApprovalScope(f"namespace `{_scope_namespace(repo, settings)}`", applied)


def _overlay_path(folder: str) -> str:
    """The staging overlay's kustomization beside a service's `k8s/base` folder."""
    return f"{folder.removesuffix('/base').removesuffix('base')}/{STAGING_OVERLAY}".lstrip("/")


def _scope_namespace(repo: Any, settings: Any) -> str:
    if repo is None or settings is None:
        return "this repository's staging namespace"
    try:
        return StagingPolicy.from_settings(settings).namespace_for(repo.full_name)
    except StagingPolicyError:
        return "(the operator's staging settings are invalid)"


async def _rollout(
    ctx: ToolContext,
    cluster: Cluster,
    objects: list[dict[str, Any]],
    namespace: str,
    service: str,
    image: str | None,
) -> str:
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    if not deployments:
        return "Nothing to roll out (no Deployment)."
    timeout = ctx.settings.staging_rollout_timeout
    try:
        states = await wait_for_rollouts(
            cluster, deployments, namespace, timeout, ctx.settings.staging_rollout_poll
        )
    except ClusterError as exc:
        raise ToolError(f"the objects are applied, but reading the rollout failed: {exc}") from None
    if all(s.done for s in states):
        return "Rolled out " + "; ".join(s.message for s in states) + "."
    pending = next(s for s in states if not s.done)
    why = await stuck_reason(cluster, deployments, namespace)
    ended = "failed" if pending.failed else f"is not finished after {timeout:g}s"
    text = f"Applied to {namespace}, but the rollout {ended}: {pending.message}"
    if why:
        text += f"; {why}"
    if why and "cannot be pulled" in why and image:
        text += f". CI may not have pushed {image} yet: `/idp retry` once its workflow is green"
    raise ToolError(text + ".")


async def _staging_overlay(
    ctx: ToolContext, folder: str, service: str, policy: StagingPolicy, from_repo: bool
) -> dict[str, Any]:
    """The staging kustomization next to the base, from where the base came (the workspace
    or the repository); else rendered again from the session's request, the values the App
    wrote it from."""
    path = _overlay_path(folder)
    text = ctx.files.get(path)
    if from_repo and ctx.forge is not None and ctx.repo is not None:
        text = await ctx.forge.read_file(ctx.repo, path)
    if text is not None:
        try:
            data = yaml.load(text, Loader=YAML_LOADER)  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            raise ToolError(f"{path} is not valid YAML") from None
        if not isinstance(data, dict):
            raise ToolError(f"{path} is not a kustomization")
        return data
    namespace = policy.namespace_for(_repo_of(ctx))
    request = ctx.session.request if ctx.session is not None else None
    if request is not None and request.name == service:
        place = StagingPlace(namespace, policy.staging_host(service))
        return overlay(request, "staging", "", place)
    return {"namespace": namespace, "resources": ["../../base"]}


async def plan_namespace(args: NamespaceInput, ctx: ToolContext) -> ClusterPlan:
    """create_k8s_namespace as a dry run, compared with the live namespace."""
    repo, name, labels = _namespace_request(args, ctx)
    try:
        cluster = _cluster(ctx)
    except ToolError as exc:
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        }
        return unreached("create_k8s_namespace", name, [body], str(exc))
    manager = field_manager(repo)
    return await in_thread(namespace_plan, cluster, "create_k8s_namespace", name, labels, manager)


async def plan_deploy(args: DeployInput, ctx: ToolContext) -> ClusterPlan:
    """deploy_to_staging as a dry run, each object compared with the live one."""
    staged = await staging_set(args, ctx, dry_run=True)
    try:
        cluster = _cluster(ctx)
    except ToolError as exc:
        return unreached("deploy_to_staging", staged.namespace, staged.objects, str(exc))
    manager = field_manager(staged.repo)
    return await in_thread(
        objects_plan, cluster, "deploy_to_staging", staged.objects, staged.namespace, manager
    )


TOOLS = [
    ToolSpec(
        name="create_k8s_namespace",
        description=(
            "Create this repository's staging namespace (the operator's rule names it), with "
            "Pod Security 'restricted' enforced. Dry run until the session is approved with "
            "/idp apply."
        ),
        input_model=NamespaceInput,
        output_model=NamespaceOutput,
        func=create_k8s_namespace,
        aliases=["create_namespace"],
        side_effect="external",
        requires_approval=True,
        approval_scope=namespace_scope,
        plan=plan_namespace,
    ),
    ToolSpec(
        name="deploy_to_staging",
        description=(
            "Apply a service's staging overlay (namespace, replica range, host) with the image "
            "CI built for the head commit, by server-side apply, and wait for the rollout. "
            "Dry run until the session is approved with /idp apply."
        ),
        input_model=DeployInput,
        output_model=DeployOutput,
        func=deploy_to_staging,
        # Above the longest rollout wait IDP_STAGING_ROLLOUT_TIMEOUT allows (600 s).
        timeout=660.0,
        aliases=["deploy_staging"],
        side_effect="external",
        requires_approval=True,
        approval_scope=deploy_scope,
        plan=plan_deploy,
    ),
]
