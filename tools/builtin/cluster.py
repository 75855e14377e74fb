"""Cluster tools: `create_k8s_namespace` and `deploy_to_staging`.

Both wait for approval. Until the session is approved they run against the API server with
`dryRun=All`: the server validates and admits every object but stores nothing, and the output
says so in words, so nothing ever reads as deployed when it was not.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator

from tools.approval import ApprovalScope
from tools.cluster import FIELD_MANAGER, Cluster, ClusterError, KubernetesCluster
from tools.service import NAME_RE, NAME_RULE, suggest_name
from tools.spec import ToolContext, ToolError, ToolSpec

DRY_RUN_NOTE = "Dry run: nothing was changed in the cluster; `/idp apply` runs it for real."
MANIFESTS_DIR = "services/{name}/k8s/base"

# Dependencies first: the identity and the network rules exist before pods start, the
# Deployment before the autoscaler and the disruption budget that point at it, and the
# Ingress last so traffic arrives only once a Service has endpoints.
APPLY_ORDER = [
    "ServiceAccount",
    "ConfigMap",
    "Secret",
    "NetworkPolicy",
    "Service",
    "Deployment",
    "StatefulSet",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
]
CLUSTER_SCOPED = set(
    [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ]
)


def staging_namespace(name: str) -> str:
    """The staging namespace of a service or team: `NAME-staging`."""
    return f"{name}-staging"


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


def _check_name(value: str, what: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(f"{NAME_RULE} ({what}); try '{suggest_name(value)}'")
    return value


class NamespaceInput(BaseModel):
    """Which namespace to create."""

    name: str = Field(description="Service or team name; the namespace is NAME-staging")
    environment: Literal["staging"] = Field("staging", description="Only staging for now")
    team: str | None = Field(None, description="Owning team, set as the `team` label")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _check_name(value, "namespace name")
        if len(staging_namespace(value)) > 63:
            raise ValueError(f"'{staging_namespace(value)}' is longer than 63 characters")
        return value

    @field_validator("team")
    @classmethod
    def _team(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value, "team")


class NamespaceOutput(BaseModel):
    namespace: str
    environment: str
    labels: dict[str, str]
    dry_run: bool
    summary: str


class DeployInput(BaseModel):
    """Which service to deploy, and (rarely) where its manifests and namespace are."""

    service: str = Field(description="Service name, e.g. payments-api")
    namespace: str | None = Field(None, description="Target namespace; default SERVICE-staging")
    manifests_dir: str | None = Field(
        None, description="Folder of the base manifests; default services/SERVICE/k8s/base"
    )

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        return _check_name(value, "service name")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value, "namespace")

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
    objects: list[AppliedObject]
    summary: str


def _cluster(ctx: ToolContext) -> Cluster:
    """The injected cluster, or one built from settings (kept on the context for the run)."""
    if ctx.cluster is None:
        try:
            ctx.cluster = KubernetesCluster.from_settings(ctx.settings)
        except ClusterError as exc:
            raise ToolError(str(exc)) from None
    return ctx.cluster


async def create_k8s_namespace(args: NamespaceInput, ctx: ToolContext) -> NamespaceOutput:
    """Create (or update the labels of) the staging namespace of a service or team."""
    dry_run = not ctx.approved
    team = args.team
    if team is None and ctx.session is not None and ctx.session.request is not None:
        team = ctx.session.request.team
    name = staging_namespace(args.name)
    labels = namespace_labels(args.environment, team)
    cluster = _cluster(ctx)
    try:
        await asyncio.to_thread(cluster.ensure_namespace, name, labels, dry_run=dry_run)
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


async def deploy_to_staging(args: DeployInput, ctx: ToolContext) -> DeployOutput:
    """Apply the service's base manifests into its staging namespace with server-side apply."""
    dry_run = not ctx.approved
    namespace = args.namespace or staging_namespace(args.service)
    folder = args.manifests_dir or MANIFESTS_DIR.format(name=args.service)
    sources = _files_in(ctx.files, folder)
    if not sources and not ctx.approved:
        # An approved deploy applies only the files whose digest was approved, which the
        # loop passes in; reading others here would apply what nobody saw.
        sources = await _files_from_repo(ctx, folder)
    if not sources:
        raise ToolError(
            f"no manifests under {folder}/ for {args.service}: generate them first "
            "(generate_k8s_manifests), or pass manifests_dir."
        )
    objects = order_objects(_parse(sources), namespace)
    results = await asyncio.to_thread(_apply_all, _cluster(ctx), objects, namespace, dry_run)
    waiting = [r for r in results if r.outcome == "waiting for namespace"]
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
        summary = f"Applied {len(results)} objects for {args.service} to namespace {namespace}."
    return DeployOutput(
        service=args.service,
        namespace=namespace,
        dry_run=dry_run,
        objects=results,
        summary=summary,
    )


def order_objects(objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """Copies of the objects in apply order, each placed in `namespace` (what kustomize's
    `namespace:` field does for the overlay). Namespace objects are left to
    create_k8s_namespace; cluster-scoped kinds are refused."""
    placed: list[dict[str, Any]] = []
    for obj in objects:
        kind = obj["kind"]
        if kind == "Namespace":
            continue
        if kind in CLUSTER_SCOPED:
            raise ToolError(
                f"{kind} {obj['metadata']['name']} is cluster-scoped: the App deploys only "
                "namespaced objects; ask the platform team to apply it."
            )
        copied = copy.deepcopy(obj)
        copied["metadata"]["namespace"] = namespace
        placed.append(copied)
    rank = {kind: i for i, kind in enumerate(APPLY_ORDER)}
    # sorted() is stable: kinds outside the list keep their file order after the known ones.
    return sorted(placed, key=lambda o: rank.get(o["kind"], len(APPLY_ORDER)))


def namespace_scope(args: NamespaceInput, files: dict[str, str], repo: Any) -> ApprovalScope:
    """What `/idp apply` approves for create_k8s_namespace: the namespace."""
    return ApprovalScope(f"namespace `{staging_namespace(args.name)}`")


def deploy_scope(args: DeployInput, files: dict[str, str], repo: Any) -> ApprovalScope:
    """What `/idp apply` approves for deploy_to_staging: the namespace and the manifests."""
    namespace = args.namespace or staging_namespace(args.service)
    folder = args.manifests_dir or MANIFESTS_DIR.format(name=args.service)
    return ApprovalScope(f"namespace `{namespace}`", _files_in(files, folder))


def _apply_all(
    cluster: Cluster, objects: list[dict[str, Any]], namespace: str, dry_run: bool
) -> list[AppliedObject]:
    results: list[AppliedObject] = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        try:
            # force: the reviewed manifests are the desired state. A hand edit made with
            # `kubectl edit` would otherwise block every later deploy with a 409 conflict;
            # replicas stay with the HPA because the rendered Deployment omits them.
            cluster.apply(obj, dry_run=dry_run, field_manager=FIELD_MANAGER, force=True)
        except ClusterError as exc:
            if dry_run and exc.missing_namespace == namespace:
                results.append(
                    AppliedObject(
                        kind=kind, name=name, namespace=namespace, outcome="waiting for namespace"
                    )
                )
                continue
            done = f" ({len(results)} objects before it went through)" if results else ""
            raise ToolError(f"{kind} {name}: {exc}{done}") from None
        outcome = "accepted by dry run" if dry_run else "applied"
        results.append(AppliedObject(kind=kind, name=name, namespace=namespace, outcome=outcome))
    return results


def _files_in(files: dict[str, str], folder: str) -> dict[str, str]:
    prefix = folder.rstrip("/") + "/"
    return {
        path: text
        for path, text in sorted(files.items())
        if path.startswith(prefix)
        and "/" not in path[len(prefix) :]
        and path.endswith((".yaml", ".yml"))
        and not path.rsplit("/", 1)[-1].startswith("kustomization.")
    }


async def _files_from_repo(ctx: ToolContext, folder: str) -> dict[str, str]:
    """After a merge the session may hold no files: read the base from the repo's default
    branch, following its kustomization.yaml (the Forge has no directory listing)."""
    if ctx.forge is None or ctx.repo is None:
        return {}
    text = await ctx.forge.read_file(ctx.repo, f"{folder}/kustomization.yaml")
    if not text:
        return {}
    try:
        resources = (yaml.safe_load(text) or {}).get("resources") or []
    except (yaml.YAMLError, AttributeError):
        raise ToolError(f"{folder}/kustomization.yaml is not a valid kustomization") from None
    found: dict[str, str] = {}
    for entry in resources:
        entry = str(entry)
        if not entry.endswith((".yaml", ".yml")) or ".." in entry.split("/"):
            continue  # remote bases and other folders are beyond what the App applies
        body = await ctx.forge.read_file(ctx.repo, f"{folder}/{entry}")
        if body is not None:
            found[f"{folder}/{entry}"] = body
    return found


def _parse(sources: dict[str, str]) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path, text in sources.items():
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            raise ToolError(f"{path} is not valid YAML: {exc}") from None
        for doc in docs:
            if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
                raise ToolError(f"{path} holds a document without apiVersion and kind")
            if not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
                raise ToolError(f"{path}: {doc['kind']} has no metadata.name")
            objects.append(doc)
    return objects


TOOLS = [
    ToolSpec(
        name="create_k8s_namespace",
        description=(
            "Create the staging namespace NAME-staging for a service or team, with Pod Security "
            "'restricted' enforced. Dry run until the session is approved with /idp apply."
        ),
        input_model=NamespaceInput,
        output_model=NamespaceOutput,
        func=create_k8s_namespace,
        aliases=["create_namespace"],
        side_effect="external",
        requires_approval=True,
        approval_scope=namespace_scope,
    ),
    ToolSpec(
        name="deploy_to_staging",
        description=(
            "Apply a service's generated Kubernetes manifests to its staging namespace with "
            "server-side apply. Dry run until the session is approved with /idp apply."
        ),
        input_model=DeployInput,
        output_model=DeployOutput,
        func=deploy_to_staging,
        timeout=180.0,
        aliases=["deploy_staging"],
        side_effect="external",
        requires_approval=True,
        approval_scope=deploy_scope,
    ),
]
