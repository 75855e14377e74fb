"""Kubernetes manifests for a service: a hardened `k8s/base` and kustomize overlays for
staging and production. Pure: the same request gives the same files.

The objects are built as dicts so that they are valid YAML by construction and so that the
pieces that must agree (selectors and pod labels, probe ports and container ports, the HPA
and the Deployment) come from one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.domain.service import ServiceRequest
from tools.render_common import (
    DEFAULT_BASE_PATH,
    ENVIRONMENTS,
    INGRESS_CLASS,
    INGRESS_NAMESPACE,
    INITIAL_VERSION,
    MONITORING_NAMESPACE,
    check_request,
    dump_yaml,
    image_repository,
    join,
    metadata,
    namespace_for,
    pod_labels,
    profile_of,
    selector_labels,
    service_dir,
)
from tools.templates import RUN_AS_ID

if TYPE_CHECKING:
    from tools.template_sets import LanguageProfile, TemplateSet

PORT_NAME = "http"
KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
CPU_TARGET_PERCENT = 70
STAGING_IMAGE_NOTE = (
    "The App deploys the image CI pushed for the deployed commit (tag sha-<commit>)."
)


@dataclass(frozen=True)
class StagingPlace:
    """Where the operator puts this repository's staging (tools/staging.py): the namespace,
    and the Ingress host when the operator names staging domains."""

    namespace: str
    host: str | None = None


def has_service(req: ServiceRequest) -> bool:
    """APIs and web frontends take traffic through a Service; workers do not."""
    return req.type in ("api", "web")


def max_replicas(req: ServiceRequest) -> int:
    return max(req.max_replicas, req.replicas)


def ingress_host(req: ServiceRequest, environment: str = "production") -> str:
    host = req.ingress_host or f"{req.name}.example.com"
    return host if environment == "production" else f"{environment}.{host}"


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _container(req: ServiceRequest, image: str, profile: LanguageProfile) -> dict[str, Any]:
    env = [{"name": "PORT", "value": str(req.port)}]
    env += [{"name": key, "value": value} for key, value in profile.env.items()]
    container: dict[str, Any] = {
        "name": req.name,
        "image": f"{image}:{INITIAL_VERSION}",
        "imagePullPolicy": "Always",
        "ports": [{"name": PORT_NAME, "containerPort": req.port, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": req.cpu_request, "memory": req.memory_request},
            "limits": {"cpu": req.cpu_limit, "memory": req.memory_limit},
        },
    }
    if profile.slow_start:
        container["startupProbe"] = _probe(req.liveness_path, period=2, failures=60)
    container["livenessProbe"] = _probe(req.liveness_path, period=10, failures=3)
    container["readinessProbe"] = _probe(req.readiness_path, period=5, failures=3)
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_ID,
        "runAsGroup": RUN_AS_ID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108
    return container


def _topology_spread(req: ServiceRequest) -> list[dict[str, Any]]:
    # ScheduleAnyway: spreading is a preference; a cluster with one zone must still schedule.
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector_labels(req)},
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def deployment(
    req: ServiceRequest, image: str, template_set: TemplateSet | None = None
) -> dict[str, Any]:
    """The Deployment. No `spec.replicas`: the HPA owns the replica count."""
    profile = profile_of(req, template_set)
    pod_spec: dict[str, Any] = {
        "serviceAccountName": req.name,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_ID,
            "runAsGroup": RUN_AS_ID,
            "fsGroup": RUN_AS_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 30,
    }
    if req.replicas > 1:
        pod_spec["topologySpreadConstraints"] = _topology_spread(req)
    pod_spec["containers"] = [_container(req, image, profile)]
    pod_spec["volumes"] = [{"name": "tmp", "emptyDir": {"sizeLimit": profile.tmp_size}}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(req),
        "spec": {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector_labels(req)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "template": {"metadata": {"labels": pod_labels(req)}, "spec": pod_spec},
        },
    }


def service_account(req: ServiceRequest) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(req),
        "automountServiceAccountToken": False,
    }


def service(req: ServiceRequest) -> dict[str, Any]:
    port = {"name": PORT_NAME, "port": 80, "targetPort": PORT_NAME, "protocol": "TCP"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(req),
        "spec": {"type": "ClusterIP", "selector": selector_labels(req), "ports": [port]},
    }


def ingress(req: ServiceRequest) -> dict[str, Any]:
    host = ingress_host(req)
    backend = {"service": {"name": req.name, "port": {"name": PORT_NAME}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(req),
        "spec": {
            "ingressClassName": INGRESS_CLASS,
            "tls": [{"hosts": [host], "secretName": f"{req.name}-tls"}],
            "rules": [
                {
                    "host": host,
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


def hpa(req: ServiceRequest) -> dict[str, Any]:
    target = {"type": "Utilization", "averageUtilization": CPU_TARGET_PERCENT}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(req),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": req.name},
            "minReplicas": req.replicas,
            "maxReplicas": max_replicas(req),
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
            # Scale down slowly: a short dip in traffic should not drop warm pods.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def pdb(req: ServiceRequest) -> dict[str, Any]:
    # maxUnavailable rather than minAvailable: never blocks a node drain, even at one replica.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(req),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(req)}},
    }


def _from_namespace(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def network_policies(req: ServiceRequest) -> list[dict[str, Any]]:
    """Default deny for the service's pods, then only what it needs: Prometheus on the
    metrics port, callers on the service port, DNS out."""
    pods = {"matchLabels": selector_labels(req)}
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(req, f"{req.name}-default-deny"),
        "spec": {"podSelector": pods, "policyTypes": ["Ingress", "Egress"]},
    }
    sources: list[dict[str, Any]] = [_from_namespace(MONITORING_NAMESPACE)]
    if req.type == "api":
        sources.append({"podSelector": {}})  # callers in the same namespace
    if req.type in ("api", "web"):
        sources.append(_from_namespace(INGRESS_NAMESPACE))
    dns_ports = [{"protocol": proto, "port": 53} for proto in ("UDP", "TCP")]
    dns_peer = {
        **_from_namespace("kube-system"),
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    allow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(req),
        "spec": {
            "podSelector": pods,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": PORT_NAME}]}],
            "egress": [{"to": [dns_peer], "ports": dns_ports}],
        },
    }
    return [deny, allow]


def _kustomization(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": KUSTOMIZE_API, "kind": "Kustomization", **fields}


def _json_patch(*ops: tuple[str, Any]) -> str:
    return dump_yaml([{"op": "replace", "path": path, "value": value} for path, value in ops])


def overlay(
    req: ServiceRequest, environment: str, image: str, staging: StagingPlace | None = None
) -> dict[str, Any]:
    """A kustomization for one environment: namespace, image tag and replica range. Staging
    goes where `staging` says (the operator's rule) and takes no image tag: the deploy sets
    the tag CI built for the deployed commit."""
    minimum = 1 if environment == "staging" else req.replicas
    maximum = min(2, max_replicas(req)) if environment == "staging" else max_replicas(req)
    patches = [
        {
            "target": {"kind": "HorizontalPodAutoscaler", "name": req.name},
            "patch": _json_patch(("/spec/minReplicas", minimum), ("/spec/maxReplicas", maximum)),
        }
    ]
    if req.type == "web" and environment != "production":
        host = ingress_host(req, environment)
        if environment == "staging" and staging is not None and staging.host:
            host = staging.host
        patches.append(
            {
                "target": {"kind": "Ingress", "name": req.name},
                "patch": _json_patch(("/spec/rules/0/host", host), ("/spec/tls/0/hosts/0", host)),
            }
        )
    namespace = namespace_for(req, environment)
    if environment == "staging":
        return _kustomization(
            namespace=staging.namespace if staging is not None else namespace,
            resources=["../../base"],
            labels=[{"pairs": {"app.kubernetes.io/environment": environment}}],
            patches=patches,
        )
    return _kustomization(
        namespace=namespace,
        resources=["../../base"],
        labels=[{"pairs": {"app.kubernetes.io/environment": environment}}],
        images=[{"name": image, "newTag": INITIAL_VERSION}],
        patches=patches,
    )


def base_objects(
    req: ServiceRequest, image: str, template_set: TemplateSet | None = None
) -> dict[str, tuple[list[dict[str, Any]], str]]:
    """File name under k8s/base → (objects, top comment), in kustomization order."""
    files: dict[str, tuple[list[dict[str, Any]], str]] = {
        "serviceaccount.yaml": ([service_account(req)], ""),
        "deployment.yaml": (
            [deployment(req, image, template_set)],
            "No spec.replicas: the HorizontalPodAutoscaler in hpa.yaml owns the replica count.",
        ),
    }
    if has_service(req):
        files["service.yaml"] = ([service(req)], "")
    if req.type == "web":
        files["ingress.yaml"] = ([ingress(req)], "")
    files["hpa.yaml"] = ([hpa(req)], "")
    if req.replicas > 1:
        files["pdb.yaml"] = ([pdb(req)], "")
    files["networkpolicy.yaml"] = (
        network_policies(req),
        "Default deny for this service's pods, then only what it needs.\n"
        "Add egress rules for the databases and APIs the service calls.",
    )
    return files


def render_k8s(
    req: ServiceRequest,
    base_path: str = DEFAULT_BASE_PATH,
    *,
    image: str | None = None,
    staging: StagingPlace | None = None,
    template_set: TemplateSet | None = None,
) -> dict[str, str]:
    """`k8s/base` and the staging and production overlays, path → YAML text. `staging` is
    the operator's namespace (and host) for this repository; without it the staging overlay
    names TEAM-staging, as for a rendering outside any repository."""
    check_request(req)
    root = join(service_dir(req, base_path), "k8s")
    repository = image_repository(req, image)
    objects = base_objects(req, repository, template_set)
    out = {
        join(root, "base", name): dump_yaml(*docs, comment=comment)
        for name, (docs, comment) in objects.items()
    }
    out[join(root, "base", "kustomization.yaml")] = dump_yaml(
        _kustomization(resources=list(objects))
    )
    comments = {
        "staging": f"Staging: namespace, replica range and host. {STAGING_IMAGE_NOTE}",
        "production": "Production: namespace, image tag and replica range.",
    }
    for environment in ENVIRONMENTS:
        out[join(root, "overlays", environment, "kustomization.yaml")] = dump_yaml(
            overlay(req, environment, repository, staging),
            comment=comments[environment],
        )
    return out
