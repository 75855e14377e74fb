"""A stand-in Kubernetes API server: server-side apply as the API server documents it.

`ApiServer` answers the requests the cluster tools make, in the real shapes (`Status` bodies,
`managedFields`), and refuses what the real one refuses
(https://kubernetes.io/docs/reference/using-api/server-side-apply/):
- each field of an object belongs to the field managers that applied it; an apply that
  changes a field another manager owns is a 409 Conflict naming that manager and the field
  (apimachinery's NewConflictError wording), unless `force=true` takes the field over;
- applying the same value shares ownership; fields a manager stops applying are removed
  unless another manager still owns them;
- `dryRun=All` validates and admits but stores nothing; any other dryRun value is refused;
- `fieldManager` is required for apply and at most 128 characters (ValidatePatchOptions);
- a namespaced object in a namespace that does not exist is a 404 (NamespaceLifecycle);
- an update (`kubectl edit`, operation Update) takes the fields it changes from everyone.
Lists of objects with a `name` are maps keyed by name (containers, env, volumes, ports), other
lists are atomic, as in the built-in types' `x-kubernetes-list-type` markers.

A Deployment controller is simulated on read: `rollout` says how the rollout goes.
`FakeCluster` is the `Cluster` protocol over it, through the real client's paths and errors.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.kube_defaults import default
from tools.cluster import KNOWN_KINDS, ClusterError, KubernetesCluster, _status_error

Path = tuple[str, ...]
CREATED = "2026-05-04T10:00:00Z"
Rollout = Literal["ready", "progressing", "image-pull", "deadline"]


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


def _key(item: Any) -> str | None:
    return f'[name="{item["name"]}"]' if isinstance(item, dict) and "name" in item else None


def leaves(value: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Every owned field of an applied configuration, path → value."""
    if isinstance(value, dict) and value:
        out: dict[Path, Any] = {}
        for k, v in value.items():
            out.update(leaves(v, (*prefix, f".{k}")))
        return out
    if isinstance(value, list) and value and all(_key(i) for i in value):
        out = {}
        for item in value:
            out.update(leaves(item, (*prefix, _key(item) or "")))
        return out
    return {prefix: copy.deepcopy(value)}


def _get(obj: Any, path: Path) -> Any:
    for part in path:
        if part.startswith("."):
            obj = obj.get(part[1:]) if isinstance(obj, dict) else None
        else:
            obj = next((i for i in obj or [] if _key(i) == part), None)
        if obj is None:
            return None
    return obj


def _set(obj: dict, path: Path, value: Any) -> None:
    node: Any = obj
    for i, part in enumerate(path):
        last = i == len(path) - 1
        nxt = path[i + 1] if not last else ""
        if part.startswith("."):
            name = part[1:]
            if last:
                node[name] = copy.deepcopy(value)
                return
            default: Any = [] if nxt.startswith("[") else {}
            if not isinstance(node.get(name), type(default)):
                node[name] = default
            node = node[name]
        else:
            item = next((i for i in node if _key(i) == part), None)
            if item is None:
                item = {"name": part[len('[name="') : -2]}
                node.append(item)
            if last:
                item.clear()
                item.update(copy.deepcopy(value))
                return
            node = item


def _delete(obj: dict, path: Path) -> None:
    parent = _get(obj, path[:-1]) if len(path) > 1 else obj
    part = path[-1]
    if isinstance(parent, dict) and part.startswith("."):
        parent.pop(part[1:], None)
    elif isinstance(parent, list):
        parent[:] = [i for i in parent if _key(i) != part]


@dataclass(frozen=True)
class Manager:
    name: str
    operation: Literal["Apply", "Update"]
    api_version: str

    def shown(self) -> str:
        # apimachinery printManager: Update managers carry the apiVersion they used.
        if self.operation == "Update":
            return f'"{self.name}" using {self.api_version}'
        return f'"{self.name}"'


@dataclass
class Stored:
    obj: dict[str, Any]
    owners: dict[Manager, set[Path]] = field(default_factory=dict)
    reads: int = 0


@dataclass
class ApiServer:
    """The objects of one cluster, their field owners, and the requests that reached it."""

    namespaces: set[str] = field(default_factory=set)
    objects: dict[str, Stored] = field(default_factory=dict)
    rollout: Rollout = "ready"
    progressing_reads: int = 2
    discovery: dict[str, list[dict]] = field(
        default_factory=lambda: {
            "/apis/monitoring.coreos.com/v1": [
                {"name": "servicemonitors", "kind": "ServiceMonitor", "namespaced": True},
                {"name": "servicemonitors/status", "kind": "ServiceMonitor"},
            ]
        }
    )
    _version: int = 40

    # Namespaces in `namespaces` that nobody applied here: made before the App came.
    premade: dict[str, Stored] = field(default_factory=dict)

    def handle(
        self, method: str, path: str, query: dict[str, str], content_type: str | None, body: Any
    ) -> tuple[int, dict]:
        if method == "GET":
            return self._get(path, query)
        if method != "PATCH":
            return 405, status(405, "MethodNotAllowed", "the server does not allow this method")
        if content_type != "application/apply-patch+yaml":
            return 415, status(
                415, "UnsupportedMediaType", f"unsupported media type {content_type}"
            )
        problem = self._patch_options(query)
        if problem:
            return 422, status(422, "Invalid", f'PatchOptions.meta.k8s.io "" is invalid: {problem}')
        return self._apply(path, body or {}, query)

    # -- reads ------------------------------------------------------------------------------

    def _get(self, path: str, query: dict[str, str]) -> tuple[int, dict]:
        if path in self.discovery:
            version = path.removeprefix("/apis/")
            return 200, {"kind": "APIResourceList", "groupVersion": version,
                         "resources": self.discovery[path]}  # fmt: skip
        if path.endswith("/pods"):
            return 200, {"kind": "PodList", "apiVersion": "v1", "items": self._pods(path)}
        stored = self._lookup(path)
        name = path.rsplit("/", 1)[-1]
        if stored is None:
            return 404, status(404, "NotFound", f'"{name}" not found', {"name": name})
        stored.reads += 1
        obj = copy.deepcopy(stored.obj)
        # A GET carries the field owners too (server-side-apply docs, "Field management").
        obj["metadata"]["managedFields"] = self._managed_fields(stored.owners)
        if obj["kind"] == "Deployment":
            obj["status"] = self._deployment_status(obj, stored.reads)
        return 200, obj

    def _deployment_status(self, obj: dict, reads: int) -> dict:
        generation, wanted = obj["metadata"]["generation"], obj["spec"].get("replicas", 1)
        status_: dict[str, Any] = {"observedGeneration": generation, "replicas": wanted}
        if self.rollout == "progressing" and reads <= self.progressing_reads:
            if reads == 1:
                return {"observedGeneration": generation - 1}
            return {**status_, "updatedReplicas": wanted, "availableReplicas": 0}
        if self.rollout == "image-pull":
            return {**status_, "updatedReplicas": wanted, "unavailableReplicas": wanted}
        if self.rollout == "deadline":
            condition = {"type": "Progressing", "status": "False",
                         "reason": "ProgressDeadlineExceeded"}  # fmt: skip
            return {**status_, "updatedReplicas": wanted, "conditions": [condition]}
        ready = {"updatedReplicas": wanted, "readyReplicas": wanted, "availableReplicas": wanted}
        return {**status_, **ready}

    def _pods(self, path: str) -> list[dict]:
        if self.rollout != "image-pull":
            return []
        namespace = path.split("/")[4]
        images = [
            c["image"]
            for s in self.objects.values()
            if s.obj["kind"] == "Deployment" and s.obj["metadata"]["namespace"] == namespace
            for c in s.obj["spec"].get("template", {}).get("spec", {}).get("containers", [])
        ]
        waiting = {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}
        return [
            {
                "metadata": {"name": f"pod-{i}", "namespace": namespace},
                "status": {
                    "phase": "Pending",
                    "containerStatuses": [{"image": image, "state": {"waiting": waiting}}],
                },
            }
            for i, image in enumerate(images)
        ]

    # -- server-side apply ------------------------------------------------------------------

    @staticmethod
    def _patch_options(query: dict[str, str]) -> str | None:
        manager = query.get("fieldManager", "")
        if not manager:
            return "fieldManager: Required value: is required for apply patch"
        if len(manager) > 128:
            return "fieldManager: Too long: may not be more than 128 bytes"
        if query.get("dryRun", "All") != "All":
            return f'dryRun: Unsupported value: ["{query["dryRun"]}"]: supported values: "All"'
        return None

    def _apply(self, path: str, body: dict, query: dict[str, str]) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        meta = body.get("metadata") or {}
        if meta.get("name") != parts[-1]:
            return 400, status(400, "BadRequest", "the name of the object does not match the "
                               "name on the URL")  # fmt: skip
        if "namespaces" in parts and parts.index("namespaces") + 2 < len(parts):
            namespace = parts[parts.index("namespaces") + 1]
            if meta.get("namespace", namespace) != namespace:
                return 400, status(400, "BadRequest", "the namespace of the provided object "
                                   "does not match the namespace sent on the request")  # fmt: skip
            if namespace not in self.namespaces:
                return 404, status(404, "NotFound", f'namespaces "{namespace}" not found',
                                   {"name": namespace, "kind": "namespaces"})  # fmt: skip
        me = Manager(query["fieldManager"], "Apply", body.get("apiVersion", ""))
        dry, force = query.get("dryRun") == "All", query.get("force") == "true"
        stored = self._lookup(path)
        current = stored.obj if stored else {}
        owners = {m: set(f) for m, f in (stored.owners if stored else {}).items()}
        applied = leaves(body)
        conflicts = [
            (other, f)
            for other, fields in owners.items()
            if other.name != me.name
            for f in sorted(fields & set(applied))
            if _get(current, f) != applied[f]
        ]
        if conflicts and not force:
            return 409, self._conflict(conflicts)
        new = copy.deepcopy(current)
        others = set().union(*(f for m, f in owners.items() if m.name != me.name))
        for gone in owners.get(me, set()) - set(applied) - others:
            _delete(new, gone)
        for f, value in applied.items():
            _set(new, f, value)
        for other, f in conflicts:  # force: the conflicting fields move to this manager
            owners[other].discard(f)
        owners[me] = set(applied)
        self._admit(new, current)
        if not dry:
            self.objects[path] = Stored(new, {m: f for m, f in owners.items() if f})
            if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 4:
                self.namespaces.add(parts[3])
        return (200 if stored else 201), {**copy.deepcopy(new), "metadata": {
            **new["metadata"], "managedFields": self._managed_fields(owners)}}  # fmt: skip

    def _lookup(self, path: str) -> Stored | None:
        """The stored object at `path`; a namespace in `namespaces` exists even if nobody
        applied it here."""
        name = path.rsplit("/", 1)[-1]
        if path in self.objects or path != f"/api/v1/namespaces/{name}":
            return self.objects.get(path)
        if name in self.namespaces and path not in self.premade:
            obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            self._admit(obj, {})
            self.premade[path] = Stored(obj)
        return self.premade.get(path)

    def _admit(self, new: dict, current: dict) -> None:
        """What the API server adds: defaults (tests/kube_defaults.py), uid,
        creationTimestamp, resourceVersion, generation; a dry run gets them too."""
        default(new)
        meta = new.setdefault("metadata", {})
        self._version += 1
        meta["resourceVersion"] = str(self._version)
        meta.setdefault("uid", f"uid-{self._version}")
        meta.setdefault("creationTimestamp", CREATED)
        old = current.get("metadata", {}).get("generation", 0)
        changed = new.get("spec") != current.get("spec")
        meta["generation"] = old + 1 if changed or not old else old

    @staticmethod
    def _conflict(conflicts: list[tuple[Manager, Path]]) -> dict:
        def text(p: Path) -> str:
            return "".join(p)

        causes = [
            {
                "type": "FieldManagerConflict",
                "message": f"conflict with {m.shown()}",
                "field": text(p),
            }  # fmt: skip
            for m, p in conflicts
        ]
        if len(conflicts) == 1:
            (m, p), = conflicts  # fmt: skip
            message = f"Apply failed with 1 conflict: conflict with {m.shown()}: {text(p)}"
        else:
            lines = []
            for m in sorted({m for m, _ in conflicts}, key=lambda m: m.name):
                lines.append(f"conflicts with {m.shown()}:")
                lines += [f"- {text(p)}" for other, p in conflicts if other == m]
            message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
        return status(409, "Conflict", message, {"causes": causes})

    @staticmethod
    def _managed_fields(owners: dict[Manager, set[Path]]) -> list[dict]:
        entries = []
        for m, fields in owners.items():
            tree: dict[str, Any] = {}
            for f in fields:
                node = tree
                for part in f:
                    node = node.setdefault(f"f:{part[1:]}" if part.startswith(".") else
                                           "k:" + json.dumps({"name": part[7:-2]}), {})  # fmt: skip
            entries.append({"manager": m.name, "operation": m.operation,
                            "apiVersion": m.api_version, "fieldsType": "FieldsV1",
                            "fieldsV1": tree})  # fmt: skip
        return entries

    # -- what other people do --------------------------------------------------------------

    def update(self, path: str, values: dict[Path, Any], manager: str = "kubectl-edit") -> None:
        """An update by someone else (operation Update): it sets the values and takes those
        fields from every other manager, as `kubectl edit` does."""
        stored = self.objects[path]
        for f, value in values.items():
            _set(stored.obj, f, value)
            for fields in stored.owners.values():
                fields.discard(f)
        who = Manager(manager, "Update", stored.obj["apiVersion"])
        stored.owners.setdefault(who, set()).update(values)


class FakeCluster(KubernetesCluster):
    """The `Cluster` protocol in memory: the real client's paths, queries and error
    sentences, answered by `ApiServer`. `calls` records what reached the cluster."""

    def __init__(self, server: ApiServer | None = None) -> None:
        self.server = server or ApiServer()
        self._plurals = dict(KNOWN_KINDS)
        self.calls: list[tuple[Any, ...]] = []
        self.managers: list[str] = []
        self.applied: list[dict[str, Any]] = []  # the bodies of real (not dry-run) applies

    @property
    def writes(self) -> list[tuple[Any, ...]]:
        """The calls that were not dry runs: what changed the cluster."""
        return [c for c in self.calls if c[-1] is False]

    def ensure_namespace(self, name: str, labels: dict[str, str], **kw: Any) -> dict:
        self.calls.append(("namespace", name, kw["dry_run"]))
        return super().ensure_namespace(name, labels, **kw)

    def apply(self, obj: dict[str, Any], **kw: Any) -> dict:
        meta = obj["metadata"]
        if obj["kind"] != "Namespace":
            entry = ("apply", obj["kind"], meta["name"], meta.get("namespace"), kw["dry_run"])
            self.calls.append(entry)
        self.managers.append(kw["field_manager"])
        assert not kw.get("force"), "the App never forces a server-side apply"
        out = super().apply(obj, **kw)
        if not kw["dry_run"] and obj["kind"] != "Namespace":
            self.applied.append(copy.deepcopy(obj))
        return out

    def _call(self, method: str, path: str, query: list[tuple[str, str]], *,
              body: dict | None = None, content_type: str | None = None) -> dict:  # fmt: skip
        code, payload = self.server.handle(method, path, dict(query), content_type, body)
        if not 200 <= code <= 299:
            raise _status_error(method, path, code, payload)
        return payload

    def close(self) -> None:
        pass


__all__ = ["ApiServer", "ClusterError", "FakeCluster", "status"]
