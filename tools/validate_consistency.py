"""Checks that Kubernetes objects work together, which no per-object schema can see:

- a Deployment scaled by an HPA has no `spec.replicas` (else every apply fights the HPA);
- Service, PodDisruptionBudget, NetworkPolicy and PodMonitor selectors match some pod's
  labels, a ServiceMonitor's selector matches some Service's labels;
- probes and Service target ports name ports the container declares;
- an Ingress backend names a Service and a port that Service has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")

Obj = dict[str, Any]
Problem = tuple[str, str]  # (path, message)


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _pod_template(obj: Obj) -> dict[str, Any]:
    return _dict(_dict(obj.get("spec")).get("template"))


def _pod_labels(obj: Obj) -> dict[str, Any]:
    return _dict(_dict(_pod_template(obj).get("metadata")).get("labels"))


def _containers(obj: Obj) -> Iterator[dict[str, Any]]:
    spec = _dict(_pod_template(obj).get("spec"))
    for key in ("initContainers", "containers"):
        yield from (c for c in _list(spec.get(key)) if isinstance(c, dict))


def _matches(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _port_declared(port: Any, containers: list[dict[str, Any]]) -> bool:
    for container in containers:
        for declared in _list(container.get("ports")):
            if port in (_dict(declared).get("name"), _dict(declared).get("containerPort")):
                return True
    return False


def _hpa_targets(objects: list[tuple[str, Obj]]) -> set[tuple[str, str]]:
    targets = set()
    for _, obj in objects:
        if obj.get("kind") == "HorizontalPodAutoscaler":
            ref = _dict(_dict(obj.get("spec")).get("scaleTargetRef"))
            targets.add((str(ref.get("kind")), str(ref.get("name"))))
    return targets


def _selector_problems(obj: Obj, pods: list[Obj], services: list[Obj]) -> list[str]:
    kind, spec = obj.get("kind"), _dict(obj.get("spec"))
    if kind == "Service":
        selector, against, what = _dict(spec.get("selector")), pods, "pod"
    elif kind in ("PodDisruptionBudget", "PodMonitor"):
        selector, against, what = _dict(_dict(spec.get("selector")).get("matchLabels")), pods, "pod"
    elif kind == "NetworkPolicy":
        selector = _dict(_dict(spec.get("podSelector")).get("matchLabels"))
        against, what = pods, "pod"
    elif kind == "ServiceMonitor":
        selector = _dict(_dict(spec.get("selector")).get("matchLabels"))
        against, what = services, "Service"
    else:
        return []
    if not selector:
        return []  # an empty selector means "all" (NetworkPolicy) or is the schema's business
    labels = [
        _pod_labels(o) if what == "pod" else _dict(_dict(o.get("metadata")).get("labels"))
        for o in against
    ]
    if any(_matches(selector, label_set) for label_set in labels):
        return []
    return [f"{kind} {_name(obj)}: selector {selector} matches no {what}'s labels in the change"]


def _workload_problems(obj: Obj, hpa_targets: set[tuple[str, str]]) -> list[str]:
    problems = []
    kind, name = str(obj.get("kind")), _name(obj)
    if (kind, name) in hpa_targets and "replicas" in _dict(obj.get("spec")):
        problems.append(
            f"{kind} {name}: remove spec.replicas, a HorizontalPodAutoscaler scales it "
            "(with both, every apply resets the replica count the HPA chose)"
        )
    selector = _dict(_dict(_dict(obj.get("spec")).get("selector")).get("matchLabels"))
    if selector and not _matches(selector, _pod_labels(obj)):
        problems.append(f"{kind} {name}: spec.selector {selector} does not match its pod labels")
    containers = list(_containers(obj))
    for container in containers:
        for probe_name in PROBES:
            probe = _dict(container.get(probe_name))
            for handler in ("httpGet", "tcpSocket", "grpc"):
                port = _dict(probe.get(handler)).get("port")
                if port is not None and not _port_declared(port, [container]):
                    problems.append(
                        f"{kind} {name}: container {container.get('name')} {probe_name} uses "
                        f"port {port!r}, which the container does not declare in ports"
                    )
    return problems


def _service_port_problems(obj: Obj, pods: list[Obj]) -> list[str]:
    spec = _dict(obj.get("spec"))
    selector = _dict(spec.get("selector"))
    backing = [p for p in pods if _matches(selector, _pod_labels(p))]
    if not backing:
        return []
    containers = [c for p in backing for c in _containers(p)]
    problems = []
    for port in _list(spec.get("ports")):
        target = _dict(port).get("targetPort", _dict(port).get("port"))
        if target is not None and not _port_declared(target, containers):
            problems.append(
                f"Service {_name(obj)}: targetPort {target!r} is not a port its pods declare"
            )
    return problems


def _ingress_problems(obj: Obj, services: list[Obj]) -> list[str]:
    by_name = {_name(s): s for s in services}
    problems = []
    for rule in _list(_dict(obj.get("spec")).get("rules")):
        for item in _list(_dict(_dict(rule).get("http")).get("paths")):
            backend = _dict(_dict(_dict(item).get("backend")).get("service"))
            service = by_name.get(str(backend.get("name")))
            if service is None:
                problems.append(
                    f"Ingress {_name(obj)}: backend Service {backend.get('name')!r} "
                    "is not in the change"
                )
                continue
            port = _dict(backend.get("port"))
            wanted = port.get("name", port.get("number"))
            ports = _list(_dict(service.get("spec")).get("ports"))
            if not any(wanted in (_dict(p).get("name"), _dict(p).get("port")) for p in ports):
                problems.append(
                    f"Ingress {_name(obj)}: Service {_name(service)} has no port {wanted!r}"
                )
    return problems


def check_consistency(objects: list[tuple[str, Obj]]) -> list[Problem]:
    """(path, message) for every place where objects in the change disagree."""
    pods = [obj for _, obj in objects if obj.get("kind") in WORKLOADS]
    services = [obj for _, obj in objects if obj.get("kind") == "Service"]
    hpa_targets = _hpa_targets(objects)
    problems: list[Problem] = []
    for path, obj in objects:
        messages = _selector_problems(obj, pods, services)
        if obj.get("kind") in WORKLOADS:
            messages += _workload_problems(obj, hpa_targets)
        elif obj.get("kind") == "Service":
            messages += _service_port_problems(obj, pods)
        elif obj.get("kind") == "Ingress":
            messages += _ingress_problems(obj, services)
        problems += [(path, message) for message in messages]
    return problems
