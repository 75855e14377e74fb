"""The `Cluster` seam: what the cluster tools need from Kubernetes, and the real client behind it.

`KubernetesCluster` speaks server-side apply (SSA) to the API server through the official
`kubernetes` client: one PATCH per object with `Content-Type: application/apply-patch+yaml`,
a field manager, and `dryRun=All` unless the caller says the change is approved. SSA makes
every apply idempotent, so a re-run job repeats nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tools.staging import StagingPolicy, StagingPolicyError

if TYPE_CHECKING:
    from app.config import Settings

FIELD_MANAGER = "idp-copilot"
APPLY_PATCH = "application/apply-patch+yaml"
# (connect, read) seconds: a hung API server must fail the step, not hold the worker.
REQUEST_TIMEOUT = (5, 30)

# apiVersion, kind → (resource plural, namespaced) for the objects the App renders. Anything
# else (a CRD such as ServiceMonitor) is looked up through API discovery once per group.
KNOWN_KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
}


class ClusterError(Exception):
    """A cluster call failed; `str()` is a sentence for the requester that names the fix."""

    def __init__(
        self, message: str, *, status: int = 0, reason: str = "", details: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.details: dict[str, Any] = details or {}

    @property
    def conflicts(self) -> list[tuple[str, str]]:
        """(manager, field) of each server-side apply conflict in a 409 Status."""
        if self.status != 409:
            return []
        causes = self.details.get("causes") or []
        return [
            (str(c.get("message", "")).removeprefix("conflict with "), str(c.get("field", "")))
            for c in causes
            if isinstance(c, dict) and c.get("type") == "FieldManagerConflict"
        ]

    @property
    def missing_namespace(self) -> str | None:
        """The namespace name when the API said the target namespace does not exist."""
        if self.status == 404 and self.details.get("kind") == "namespaces":
            return self.details.get("name")
        return None


class Cluster(Protocol):
    """What the agent's cluster tools call. `apply` and `ensure_namespace` return the object
    the API server returned (for a dry run: what it would have stored); `read` the live
    object or None; `pods` the pods matching labels in a namespace."""

    def apply(
        self, obj: dict[str, Any], *, dry_run: bool, field_manager: str, force: bool = False
    ) -> dict[str, Any]: ...

    def ensure_namespace(
        self,
        name: str,
        labels: dict[str, str],
        *,
        dry_run: bool,
        field_manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]: ...

    def read(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None: ...

    def pods(self, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]: ...


class KubernetesCluster:
    """`Cluster` on the official client: raw `call_api` PATCHes, so no discovery round trips
    are needed for the kinds in `KNOWN_KINDS`."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self.api = api_client
        self._plurals: dict[tuple[str, str], tuple[str, bool]] = dict(KNOWN_KINDS)

    @classmethod
    def from_settings(cls, settings: Settings, *, context: str | None = None) -> KubernetesCluster:
        """Credentials in this order: `KUBECONFIG` from settings, the pod's service account
        (in-cluster), then `~/.kube/config`. `context` is the repository's pick, used only
        when the operator's IDP_STAGING_CONTEXTS allow it. Raises ClusterError naming what
        to set."""
        try:
            context = StagingPolicy.from_settings(settings).context_for(context)
        except StagingPolicyError as exc:
            raise ClusterError(f"{exc}.") from None
        if context is not None and settings.kubeconfig is None:
            # The in-cluster account has no contexts: never ignore the operator's choice.
            try:
                return cls(_client_from_kubeconfig(None, context))
            except ClusterError as exc:
                raise ClusterError(f"{exc} (IDP_STAGING_CONTEXTS names {context})") from None
        if settings.kubeconfig is not None:
            if not settings.kubeconfig.is_file():
                raise ClusterError(
                    f"KUBECONFIG points at {settings.kubeconfig}, which is not a readable file: "
                    "fix the path or unset it to use the in-cluster service account."
                )
            return cls(_client_from_kubeconfig(str(settings.kubeconfig), context))
        try:
            # Raises when KUBERNETES_SERVICE_HOST is unset, i.e. outside a pod.
            configuration = k8s.Configuration()
            k8s_config.load_incluster_config(client_configuration=configuration)
            return cls(k8s.ApiClient(configuration))
        except k8s_config.ConfigException:
            pass
        try:
            return cls(_client_from_kubeconfig(None, context))
        except ClusterError:
            raise ClusterError(
                "no Kubernetes credentials: set KUBECONFIG for the worker, or run it in the "
                "cluster with a service account that may create namespaces and apply objects."
            ) from None

    def apply(
        self,
        obj: dict[str, Any],
        *,
        dry_run: bool,
        field_manager: str = FIELD_MANAGER,
        force: bool = False,
    ) -> dict[str, Any]:
        """Server-side apply of one namespaced object (or a Namespace). `force` takes over
        fields another manager owns; without it such a conflict is a 409 ClusterError naming
        the other manager. A kind the API server reports as cluster-scoped is refused here
        too, whatever the caller checked."""
        path = self.object_path(obj)
        if obj.get("kind") != "Namespace" and "/namespaces/" not in path:
            raise ClusterError(
                f"{obj.get('kind')} {obj['metadata']['name']} is cluster-scoped: the App "
                "applies only namespaced objects."
            )
        query: list[tuple[str, str]] = [("fieldManager", field_manager)]
        if dry_run:
            query.append(("dryRun", "All"))
        if force:
            query.append(("force", "true"))
        return self._call("PATCH", path, query, body=obj, content_type=APPLY_PATCH)

    def ensure_namespace(
        self,
        name: str,
        labels: dict[str, str],
        *,
        dry_run: bool,
        field_manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        """Create the namespace or bring our labels up to date. Not forced: a namespace is
        shared ground, and a label another team set differently must surface, not be overwritten.
        """
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(labels)},
        }
        return self.apply(namespace, dry_run=dry_run, field_manager=field_manager, force=False)

    def read(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        probe = {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
        }
        try:
            return self._call("GET", self.object_path(probe), [])
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    def pods(self, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """The pods in `namespace` carrying every label of `labels`."""
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        listing = self._call(
            "GET", f"/api/v1/namespaces/{namespace}/pods", [("labelSelector", selector)]
        )
        items = listing.get("items")
        return items if isinstance(items, list) else []

    def object_path(self, obj: dict[str, Any]) -> str:
        """The REST path of one object, e.g. /apis/apps/v1/namespaces/ns/deployments/web."""
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        metadata = obj.get("metadata") or {}
        name = metadata.get("name")
        if not api_version or not kind or not name:
            raise ClusterError("every object needs apiVersion, kind and metadata.name")
        plural, namespaced = self._resource(api_version, kind)
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if not namespaced:
            return f"{prefix}/{plural}/{name}"
        namespace = metadata.get("namespace")
        if not namespace:
            raise ClusterError(f"{kind} {name} has no metadata.namespace; set one to apply it")
        return f"{prefix}/namespaces/{namespace}/{plural}/{name}"

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        if (api_version, kind) not in self._plurals:
            prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                listing = self._call("GET", prefix, [])
            except ClusterError as exc:
                if exc.status != 404:
                    raise
                listing = {}
            for resource in listing.get("resources", []):
                if "/" not in resource.get("name", ""):  # skip subresources like pods/log
                    key = (api_version, resource.get("kind", ""))
                    self._plurals[key] = (resource["name"], bool(resource.get("namespaced")))
        if (api_version, kind) not in self._plurals:
            raise ClusterError(
                f"the cluster does not serve {kind} in {api_version}: install its CRD or "
                "remove the object from the manifests."
            )
        return self._plurals[(api_version, kind)]

    def _call(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        *,
        body: dict[str, Any] | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        request = self.api.param_serialize(
            method,
            path,
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
            data = response.read()
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterError(
                f"cannot reach the Kubernetes API at {self.api.configuration.host} "
                f"({_root_cause(exc)}): check KUBECONFIG and the context, and that the "
                "worker can reach the cluster."
            ) from None
        except k8s.ApiException as exc:  # TLS failures surface here with status 0
            raise ClusterError(
                f"cannot talk to the Kubernetes API at {self.api.configuration.host}: {exc.reason}"
            ) from None
        payload = _json(data)
        if not 200 <= response.status <= 299:
            raise _status_error(method, path, response.status, payload)
        return payload

    def close(self) -> None:
        self.api.close()


def _client_from_kubeconfig(path: str | None, context: str | None) -> k8s.ApiClient:
    try:
        return k8s_config.new_client_from_config(config_file=path, context=context)
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        where = path or "~/.kube/config"
        raise ClusterError(f"cannot load the kubeconfig {where}: {exc}") from None


def _json(data: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(data or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _root_cause(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "refused" in text.lower():
        return "connection refused"
    return text.split(": ", 1)[-1][:200]


_STATUS_HINTS = {
    401: "the API server rejected the credentials: refresh the token in KUBECONFIG.",
    403: "the App's Kubernetes identity lacks RBAC for this: grant it get, create and patch on "
    "the resource in that namespace.",
    404: "the API server does not know this path: check the apiVersion and the namespace.",
    409: "another field manager owns these fields and the App never forces: agree on the "
    "value with that owner, or remove the field from the manifest.",
    422: "the API server rejected the object as invalid: fix the field it names.",
}


def _status_error(method: str, path: str, status: int, payload: dict[str, Any]) -> ClusterError:
    """A Kubernetes `Status` body as a sentence: what failed, the server's words, the fix."""
    message = str(payload.get("message") or "").strip()
    reason = str(payload.get("reason") or "")
    details = payload.get("details") or {}
    hint = _STATUS_HINTS.get(status, "see the API server's message.")
    if status == 404 and details.get("kind") == "namespaces":
        hint = "the namespace does not exist yet: create it first (create_k8s_namespace)."
    text = f"Kubernetes API {method} {path} failed with {status}"
    if message:
        text += f": {message}"
    return ClusterError(
        f"{text}. {hint[0].upper()}{hint[1:]}",
        status=status,
        reason=reason,
        details=details,
    )
