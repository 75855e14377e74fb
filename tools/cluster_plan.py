"""The dry-run plan of a cluster step: each object applied with `dryRun=All` through the
`Cluster` seam, read live beside it, and compared (app/domain/plan.py). Nothing here writes
to a cluster: every apply is a dry run, every other call a read.

A cluster that cannot be reached (none configured, or no answer) is not an error here: the
plan says so and lists what would be applied, and its digest covers that list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from app.domain.plan import ClusterPlan, ObjectPlan, object_plan
from tools.cluster import Cluster, ClusterError

NAMESPACE_PENDING = (
    "namespace {namespace} does not exist yet, so the API server checks these objects only "
    "once create_k8s_namespace has run on `/idp apply`"
)


class Unreached(Exception):
    """No cluster answered: `str()` says why (no credentials, connection refused, …)."""


def unreached(tool: str, target: str, objects: list[dict[str, Any]], why: str) -> ClusterPlan:
    """The plan without a cluster: what would be applied, and why nothing was asked."""
    note = f"No cluster was asked, so this lists what would be applied: {why.rstrip('.')}."
    return ClusterPlan(
        tool=tool,
        target=target,
        reached=False,
        note=note,
        objects=[object_plan(o, None, None, reached=False) for o in objects],
    )


def _refusal(exc: ClusterError) -> str:
    conflicts = exc.conflicts
    if conflicts:
        owners = sorted({manager for manager, _ in conflicts})
        fields = ", ".join(f for _, f in conflicts[:5])
        return f"409 Conflict: {', '.join(owners)} own {fields}"
    return str(exc)


def _one(
    read: Callable[[], dict[str, Any] | None],
    dry_run: Callable[[], dict[str, Any]],
    body: dict[str, Any],
) -> ObjectPlan:
    """Read the live object, then dry-run the apply; a refusal is the object's plan, a
    cluster that does not answer ends the whole plan (`Unreached`)."""
    try:
        live = read()
        result = dry_run()
    except ClusterError as exc:
        if exc.status == 0:
            raise Unreached(str(exc)) from None
        return object_plan(body, None, None, refused=_refusal(exc))
    return object_plan(body, live, result)


def namespace_plan(
    cluster: Cluster, tool: str, name: str, labels: dict[str, str], manager: str
) -> ClusterPlan:
    """The plan of ensure_namespace(name, labels): created, its labels changed, or unchanged."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    try:
        obj = _one(
            lambda: cluster.read("v1", "Namespace", "", name),
            lambda: cluster.ensure_namespace(name, labels, dry_run=True, field_manager=manager),
            body,
        )
    except Unreached as exc:
        return unreached(tool, name, [body], str(exc))
    return ClusterPlan(tool=tool, target=name, objects=[obj])


def objects_plan(
    cluster: Cluster, tool: str, objects: list[dict[str, Any]], namespace: str, manager: str
) -> ClusterPlan:
    """The plan of applying `objects` to `namespace`, object by object, in apply order. In a
    namespace that does not exist yet every object is created, and the plan says the server
    checks them only once the namespace exists."""
    try:
        exists = cluster.read("v1", "Namespace", "", namespace) is not None
    except ClusterError as exc:
        if exc.status == 0:
            return unreached(tool, namespace, objects, str(exc))
        exists = True  # a refused read (RBAC): the dry runs below say what is refused
    if not exists:
        note = NAMESPACE_PENDING.format(namespace=namespace)
        planned = [object_plan(o, None, None) for o in objects]
        return ClusterPlan(tool=tool, target=namespace, note=note, objects=planned)
    try:
        planned = [
            _one(
                lambda o=o: cluster.read(
                    o["apiVersion"], o["kind"], namespace, o["metadata"]["name"]
                ),
                lambda o=o: cluster.apply(o, dry_run=True, field_manager=manager, force=False),
                o,
            )
            for o in objects
        ]
    except Unreached as exc:
        return unreached(tool, namespace, objects, str(exc))
    return ClusterPlan(tool=tool, target=namespace, objects=planned)


async def in_thread(func: Callable[..., ClusterPlan], *args: Any) -> ClusterPlan:
    """The blocking client off the event loop, as the cluster tools call it."""
    return await asyncio.to_thread(func, *args)
