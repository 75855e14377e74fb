"""Is a Deployment rolled out? The same test `kubectl rollout status` makes, as pure functions.

A rollout is complete when the controller has observed the latest spec (observedGeneration
>= generation), every desired replica runs the new template (updatedReplicas), no old
replica is left (replicas == updatedReplicas) and every updated replica is available; it has
failed when the Progressing condition says ProgressDeadlineExceeded
(https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#deployment-status;
kubectl's pkg/polymorphichelpers/rollout_status.go).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Container waiting reasons that will not resolve by waiting longer, with what they mean here.
STUCK_REASONS = {
    "ErrImagePull": "the image cannot be pulled",
    "ImagePullBackOff": "the image cannot be pulled",
    "InvalidImageName": "the image name is invalid",
    "CrashLoopBackOff": "the container keeps crashing",
    "CreateContainerConfigError": "the container's configuration is invalid",
}


@dataclass(frozen=True)
class RolloutState:
    """Where one Deployment's rollout stands: `done`, `failed`, and a sentence."""

    done: bool
    failed: bool
    message: str
    available: int = 0
    desired: int = 0


def deployment_state(obj: dict[str, Any]) -> RolloutState:
    """The rollout state of a Deployment as the API server returned it."""
    name = (obj.get("metadata") or {}).get("name", "")
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    observed = int(status.get("observedGeneration") or 0)
    desired = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)

    def state(done: bool, message: str, failed: bool = False) -> RolloutState:
        return RolloutState(done, failed, message, available, desired)

    if generation > observed:
        return state(False, f"waiting for the controller to observe Deployment {name}'s new spec")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and (
            condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return state(False, f"Deployment {name} exceeded its progress deadline", True)
    if updated < desired:
        return state(False, f"{updated} of {desired} new replicas of {name} are updated")
    if total > updated:
        return state(False, f"{total - updated} old replicas of {name} are pending termination")
    if available < updated:
        return state(False, f"{available} of {updated} updated replicas of {name} are available")
    return state(True, f"{name}: {available} of {desired} replicas available")


def stuck_pod_reason(pods: list[dict[str, Any]]) -> str | None:
    """The first container waiting for a reason that waiting will not fix, as a sentence."""
    for pod in pods:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        for container in statuses:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in STUCK_REASONS:
                pod_name = (pod.get("metadata") or {}).get("name", "")
                return (
                    f"pod {pod_name}: {reason}, {STUCK_REASONS[reason]} "
                    f"({container.get('image', 'unknown image')})"
                )
    return None
