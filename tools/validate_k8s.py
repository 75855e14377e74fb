"""Strict Kubernetes schema validation with each schema loaded once per process.

kubernetes-validate's `validate` reads and parses its 1.8 MB definitions file, builds a
`referencing` registry and a validator for every object it checks: most of the CPU of a
create-service run's validation. This runs the same checks (the same schema files, the same
Draft 2020-12 validator, the same errors) through one validator per kind, cached, and the
worker builds them before it forks its work horses (jobs/worker.py `preload`).
tests/test_validate_k8s.py compares its answers with the library's.
"""

from __future__ import annotations

import re
from contextlib import suppress
from functools import cache, lru_cache
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import major_minor, schema_contents
from referencing import Registry, Resource

VERSION = kubernetes_validate.latest_version()
# The kinds the built-in templates render (tools/render_k8s.py), warmed before the fork.
COMMON_KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
)
# As the library: rbac.authorization.k8s.io/v1 -> rbac-v1.
_GROUP = re.compile(r"^([^./]*)(?:\.[^/]*)?/")


def _schema_dir(strict: bool) -> str:
    return f"v{VERSION}-local" + ("-strict" if strict else "")


@cache
def _definitions(schema_dir: str) -> Resource:
    path = f"kubernetes-json-schema/{schema_dir}/_definitions.json"
    return Resource.from_contents(schema_contents(path, VERSION))


# Bounded: kinds come from generated files, a handful in practice.
@lru_cache(maxsize=64)
def _validator(kind: str, api_version: str, strict: bool) -> jsonschema.Draft202012Validator:
    schema_dir = _schema_dir(strict)
    filename = f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{api_version}.json"
    schema = schema_contents(filename, VERSION)  # FileNotFoundError: no such kind
    registry = _definitions(schema_dir) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(obj: dict[str, Any], strict: bool = True) -> str:
    """As `kubernetes_validate.validate(obj, VERSION, strict)`: the Kubernetes version
    checked against, or its ValidationError / SchemaNotFoundError."""
    api_version = _GROUP.sub(r"\1-", obj["apiVersion"])
    try:
        validator = _validator(obj["kind"], api_version, strict)
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(
            version=major_minor(VERSION), kind=obj["kind"], api_version=obj["apiVersion"]
        ) from None
    try:
        validator.validate(obj)
    except jsonschema.ValidationError as exc:
        raise kubernetes_validate.ValidationError(exc, version=major_minor(VERSION)) from None
    return major_minor(VERSION)


def warm() -> None:
    """Load the definitions and build (and run once) the validators of the common kinds:
    called before the worker forks, so every work horse shares them."""
    for api_version, kind in COMMON_KINDS:
        # A bare object lacks its spec and fails: the refs it resolves are what counts.
        with suppress(kubernetes_validate.ValidationError):
            validate({"apiVersion": api_version, "kind": kind, "metadata": {"name": "warm"}})
