"""tools/validate_k8s.py runs kubernetes-validate's checks with its schemas cached: the same
objects through the library's `validate` and through it give the same answers."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from tools import validate_k8s

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "api"},
    "spec": {
        "selector": {"matchLabels": {"app": "api"}},
        "template": {
            "metadata": {"labels": {"app": "api"}},
            "spec": {"containers": [{"name": "api", "image": "ghcr.io/acme/api:1"}]},
        },
    },
}


def _broken(change) -> dict:
    obj = copy.deepcopy(DEPLOYMENT)
    change(obj)
    return obj


CASES = [
    DEPLOYMENT,
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}, "spec": {"ports": []}},
    _broken(lambda o: o["spec"].pop("selector")),  # a required field missing
    _broken(lambda o: o["spec"].update(replicas="two")),  # a wrong type
    _broken(lambda o: o["spec"]["template"]["spec"].update(unknownField=1)),  # strict: unknown
    {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "x"}},
    {"apiVersion": "v1", "kind": "NoSuchKind", "metadata": {"name": "x"}},
    {"apiVersion": "nosuch.example.com/v9", "kind": "Deployment", "metadata": {"name": "x"}},
]


def _answer(run, obj) -> tuple:
    try:
        return ("ok", run(obj))
    except kubernetes_validate.ValidationError as exc:
        return ("invalid", list(exc.path), exc.message, exc.version)
    except kubernetes_validate.SchemaNotFoundError as exc:
        return ("no schema", exc.message)


@pytest.mark.parametrize("obj", CASES)
def test_the_cached_validator_answers_as_the_library_does(obj):
    library = _answer(
        lambda o: kubernetes_validate.validate(o, validate_k8s.VERSION, strict=True), obj
    )
    cached = _answer(validate_k8s.validate, obj)
    assert cached == library
    assert _answer(validate_k8s.validate, obj) == library  # and again, from the cache


def test_warming_builds_the_validators_of_the_rendered_kinds():
    validate_k8s._validator.cache_clear()
    validate_k8s.warm()
    assert validate_k8s._validator.cache_info().currsize == len(validate_k8s.COMMON_KINDS)
