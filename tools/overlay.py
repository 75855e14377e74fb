"""Build a kustomize overlay in process: the part of kustomize the App's own overlays use.

The App writes `k8s/overlays/<env>/kustomization.yaml` itself (tools/render_k8s.py) with
`namespace`, `resources: [../../base]`, `labels`, `images` and JSON 6902 `patches`. The
deploy builds the same objects here, so no kustomize binary is needed at run time; anything
else in an overlay (generators, components, remote bases, strategic-merge patches) is
refused with a sentence instead of being half-applied. A test compares the result with
`kubectl kustomize`.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "namespace", "resources", "labels", "images", "patches"}


class OverlayError(ValueError):
    """The overlay uses something the in-process build does not do; `str()` says what."""


def build(base: list[dict[str, Any]], kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects `kustomize build` gives for an overlay of `base` (copies)."""
    unknown = sorted(set(kustomization) - SUPPORTED)
    if unknown:
        raise OverlayError(
            f"the staging overlay uses {', '.join(unknown)}, which the App does not build; "
            f"keep to {', '.join(sorted(SUPPORTED - {'apiVersion', 'kind'}))}"
        )
    resources = kustomization.get("resources") or []
    if resources != ["../../base"]:
        raise OverlayError("the staging overlay's resources must be exactly ['../../base']")
    objects = [copy.deepcopy(obj) for obj in base]
    for patch in kustomization.get("patches") or []:
        _patch(objects, patch)
    namespace = kustomization.get("namespace")
    for obj in objects:
        meta = obj.setdefault("metadata", {})
        if namespace:
            meta["namespace"] = namespace
        for entry in kustomization.get("labels") or []:
            if entry.get("includeSelectors") or entry.get("includeTemplates"):
                raise OverlayError("the staging overlay's labels may not reach selectors")
            meta.setdefault("labels", {}).update(entry.get("pairs") or {})
    for image in kustomization.get("images") or []:
        set_image(objects, str(image["name"]), image.get("newName"), image.get("newTag"))
    return objects


def set_image(
    objects: list[dict[str, Any]], name: str, new_name: str | None, new_tag: str | None
) -> int:
    """kustomize's `images` transformer: containers running `name` (any tag) get the new
    name and tag. Returns how many containers changed."""
    changed = 0
    for obj in objects:
        pod = (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}
        for key in ("initContainers", "containers"):
            for container in pod.get(key) or []:
                image = str(container.get("image", ""))
                repository, tag = _split_image(image)
                if repository != name:
                    continue
                repository = new_name or repository
                tag = new_tag if new_tag is not None else tag
                container["image"] = f"{repository}:{tag}" if tag else repository
                changed += 1
    return changed


def _split_image(image: str) -> tuple[str, str]:
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        return image.rsplit(":", 1)[0], image.rsplit(":", 1)[1]
    return image, ""


def _patch(objects: list[dict[str, Any]], patch: dict[str, Any]) -> None:
    target = patch.get("target") or {}
    if set(target) - {"kind", "name"} or "path" in patch:
        raise OverlayError("a staging overlay patch may target only kind and name, inline")
    try:
        ops = yaml.safe_load(patch.get("patch") or "")
    except yaml.YAMLError:
        raise OverlayError("a staging overlay patch is not valid YAML") from None
    if not isinstance(ops, list):
        raise OverlayError("the App builds only JSON 6902 patches (a list of operations)")
    for obj in objects:
        name = (obj.get("metadata") or {}).get("name")
        if target.get("kind", obj.get("kind")) != obj.get("kind"):
            continue
        if target.get("name", name) != name:
            continue
        for op in ops:
            _apply_op(obj, op)


def _apply_op(obj: dict[str, Any], op: dict[str, Any]) -> None:
    kind, path = op.get("op"), str(op.get("path", ""))
    if kind not in ("replace", "add") or not path.startswith("/"):
        raise OverlayError(f"patch op {kind!r} at {path!r}: only replace and add are built")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
    node: Any = obj
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.get(part)
        if node is None:
            raise OverlayError(f"patch path {path} does not exist in {obj.get('kind')}")
    last = parts[-1]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if kind == "add":
            node.insert(index, op.get("value"))
        elif index < len(node):
            node[index] = op.get("value")
        else:
            raise OverlayError(f"patch path {path} does not exist in {obj.get('kind')}")
    elif kind == "replace" and last not in node:
        raise OverlayError(f"patch path {path} does not exist in {obj.get('kind')}")
    else:
        node[last] = op.get("value")
