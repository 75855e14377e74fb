"""What the stand-in API server (tests/kube_standin.py) fills in on admission, as the real
one's defaulting does for the kinds the App applies, so a dry run answers with "the object as
it would be" (https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run) and a
plan that ignores nothing but noise still sees an unchanged object as unchanged.

Values from the API reference (kubernetes.io/docs/reference/kubernetes-api/): Deployment
spec (replicas 1, RollingUpdate 25 %/25 %, revisionHistoryLimit 10, progressDeadlineSeconds
600), PodSpec (restartPolicy Always, dnsPolicy ClusterFirst, terminationGracePeriodSeconds
30, schedulerName default-scheduler), Container (terminationMessagePath, -Policy, and
imagePullPolicy: Always for `:latest` or no tag, else IfNotPresent), ServicePort (protocol
TCP, targetPort = port), Service (type ClusterIP, sessionAffinity None), Namespace (the
`kubernetes.io/metadata.name` label, set by the API server on every namespace, and the
`kubernetes` finalizer).
"""

from __future__ import annotations

from typing import Any


def _pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    return "Always" if ":" not in tail or tail.endswith(":latest") else "IfNotPresent"


def _pod(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in spec.get("containers") or []:
        if not isinstance(container, dict):
            continue
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("imagePullPolicy", _pull_policy(str(container.get("image", ""))))
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def default(obj: dict[str, Any]) -> None:
    """Fill in `obj`'s defaults in place."""
    kind, spec = obj.get("kind"), obj.get("spec")
    if kind == "Namespace":
        meta = obj.setdefault("metadata", {})
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name")
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    elif kind == "Deployment":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
        )
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        template = spec.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            _pod(template["spec"])
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
