"""What `deploy_to_staging` does between reading the manifests and answering: build the
staging overlay in process, hold every object to the operator's rules, apply them in
dependency order as the repository's own field manager (never forced), and wait, bounded,
for the Deployments to roll out.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import yaml

from tools.cluster import Cluster, ClusterError
from tools.overlay import OverlayError, build
from tools.rollout import RolloutState, deployment_state, stuck_pod_reason
from tools.spec import ToolContext, ToolError
from tools.staging import StagingPolicy, StagingPolicyError

# libyaml's parser where PyYAML has it (as tools/validate.py): the same documents as
# SafeLoader's, parsed in C; every request parses its manifests for the plan and the deploy.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

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


@dataclass
class Applied:
    kind: str
    name: str
    outcome: str


def staging_objects(
    base: list[dict[str, Any]],
    kustomization: dict[str, Any],
    namespace: str,
    policy: StagingPolicy,
) -> list[dict[str, Any]]:
    """The overlay built over `base`, checked against the operator's rules, in apply order.
    Namespace objects are left to create_k8s_namespace."""
    if kustomization.get("namespace") != namespace:
        raise ToolError(
            f"the staging overlay names namespace {kustomization.get('namespace')!r}, but the "
            f"operator puts this repository's staging in {namespace}: re-render the manifests "
            f"(`/idp upgrade`) or set `namespace: {namespace}` in the overlay."
        )
    try:
        objects = [o for o in build(base, kustomization) if o.get("kind") != "Namespace"]
        for obj in objects:
            policy.check_object(obj)
    except (OverlayError, StagingPolicyError) as exc:
        raise ToolError(f"{exc}.") from None
    rank = {kind: i for i, kind in enumerate(APPLY_ORDER)}
    # sorted() is stable: kinds outside the list keep their file order after the known ones.
    return sorted(objects, key=lambda o: rank.get(o["kind"], len(APPLY_ORDER)))


def parse_manifests(sources: dict[str, str]) -> list[dict[str, Any]]:
    """Every object in `sources` (path → YAML text); a bad document is a ToolError."""
    objects: list[dict[str, Any]] = []
    for path, text in sources.items():
        try:
            docs = [d for d in yaml.load_all(text, Loader=YAML_LOADER) if d is not None]  # noqa: S506
        except yaml.YAMLError as exc:
            raise ToolError(f"{path} is not valid YAML: {exc}") from None
        for doc in docs:
            if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
                raise ToolError(f"{path} holds a document without apiVersion and kind")
            if not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
                raise ToolError(f"{path}: {doc['kind']} has no metadata.name")
            objects.append(doc)
    return objects


def apply_all(
    cluster: Cluster,
    objects: list[dict[str, Any]],
    namespace: str,
    manager: str,
    dry_run: bool,
) -> list[Applied]:
    """Server-side apply, object by object, without force: a field another manager owns
    stops the deploy with that manager named (the App never takes fields over)."""
    results: list[Applied] = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        try:
            cluster.apply(obj, dry_run=dry_run, field_manager=manager, force=False)
        except ClusterError as exc:
            if dry_run and exc.missing_namespace == namespace:
                results.append(Applied(kind, name, "waiting for namespace"))
                continue
            done = f" ({len(results)} objects before it went through)" if results else ""
            raise ToolError(f"{kind} {name}: {_conflict_text(exc) or exc}{done}") from None
        results.append(Applied(kind, name, "accepted by dry run" if dry_run else "applied"))
    return results


def _conflict_text(exc: ClusterError) -> str:
    conflicts = exc.conflicts
    if not conflicts:
        return ""
    owners = sorted({manager for manager, _ in conflicts})
    fields = ", ".join(field for _, field in conflicts[:5])
    return (
        f"409 Conflict: {', '.join(owners)} already own{'s' if len(owners) == 1 else ''} "
        f"{fields}. The App never forces a server-side apply: agree on the value with that "
        "owner, or remove the field from the manifest"
    )


async def wait_for_rollouts(
    cluster: Cluster,
    deployments: list[dict[str, Any]],
    namespace: str,
    timeout: float,
    poll: float,
) -> list[RolloutState]:
    """Read each Deployment until all have rolled out, one has failed, or `timeout` seconds
    have passed; the last state of each."""
    deadline = time.monotonic() + timeout
    while True:
        states = [await _state(cluster, namespace, d["metadata"]["name"]) for d in deployments]
        finished = all(s.done for s in states) or any(s.failed for s in states)
        if finished or time.monotonic() >= deadline:
            return states
        await asyncio.sleep(poll)


async def _state(cluster: Cluster, namespace: str, name: str) -> RolloutState:
    live = await asyncio.to_thread(cluster.read, "apps/v1", "Deployment", namespace, name)
    if live is None:
        return RolloutState(False, True, f"Deployment {name} is gone from {namespace}")
    return deployment_state(live)


async def stuck_reason(
    cluster: Cluster, deployments: list[dict[str, Any]], namespace: str
) -> str | None:
    """Why a rollout will not finish by waiting, read from the Deployments' pods."""
    for deployment in deployments:
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels")
        if not selector:
            continue
        try:
            pods = await asyncio.to_thread(cluster.pods, namespace, dict(selector))
        except ClusterError:
            return None  # the rollout state already says enough
        reason = stuck_pod_reason(pods)
        if reason:
            return reason
    return None


def files_in(files: dict[str, str], folder: str) -> dict[str, str]:
    """The manifests directly in `folder` (path → text), kustomization files aside."""
    prefix = folder.rstrip("/") + "/"
    return {
        path: text
        for path, text in sorted(files.items())
        if path.startswith(prefix)
        and "/" not in path[len(prefix) :]
        and path.endswith((".yaml", ".yml"))
        and not path.rsplit("/", 1)[-1].startswith("kustomization.")
    }


async def files_from_repo(ctx: ToolContext, folder: str) -> dict[str, str]:
    """After a merge the session may hold no files: read the base from the repo's default
    branch, following its kustomization.yaml (the Forge has no directory listing)."""
    if ctx.forge is None or ctx.repo is None:
        return {}
    text = await ctx.forge.read_file(ctx.repo, f"{folder}/kustomization.yaml")
    if not text:
        return {}
    try:
        resources = (yaml.load(text, Loader=YAML_LOADER) or {}).get("resources") or []  # noqa: S506
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
