"""Contract tests of the stand-in API server (tests/kube_standin.py): it answers server-side
apply the way Kubernetes documents it, so the cluster tools are tested against the refusals
the real API server makes.

Pages followed:
- https://kubernetes.io/docs/reference/using-api/server-side-apply/ (field management,
  conflicts, forcing, shared ownership, removing fields, dry run)
- https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run (`dryRun=All`: full
  admission, validation and merge conflicts; the answer as close as possible to a real one,
  generated values included; nothing persisted)
- https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name
- the API reference's defaults for Deployment, PodSpec, Container and Service
  (kubernetes.io/docs/reference/kubernetes-api/), in tests/kube_defaults.py
- apimachinery `ValidatePatchOptions` and `NewConflictError` for the exact Status bodies.
"""

from __future__ import annotations

import pytest

from tests.kube_standin import ApiServer, FakeCluster
from tools.cluster import ClusterError

APPLY = "application/apply-patch+yaml"
NS = "shop"
PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/web"


def deployment(replicas: int | None = 2, image: str = "nginx:1.27", **extra) -> dict:
    spec: dict = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]},
        },
        **extra,
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": spec,
    }


@pytest.fixture
def server() -> ApiServer:
    return ApiServer(namespaces={NS})


def apply(server: ApiServer, body: dict, manager: str, **query: str) -> tuple[int, dict]:
    return server.handle("PATCH", PATH, {"fieldManager": manager, **query}, APPLY, body)


def test_an_apply_creates_the_object_and_records_its_manager(server):
    """Field management: the server tracks managed fields of newly created objects."""
    code, obj = apply(server, deployment(), "team-a")

    assert code == 201
    (entry,) = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == (
        "team-a",
        "Apply",
        "FieldsV1",
    )
    assert "f:replicas" in entry["fieldsV1"]["f:spec"]
    containers = entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert 'k:{"name": "web"}' in containers  # containers are a map keyed by name


def test_a_different_value_for_a_field_another_manager_owns_is_a_409_naming_it(server):
    """Conflicts: 'fields that have a different value and are owned by another manager
    will result in a conflict' — 409, reason Conflict, one FieldManagerConflict cause each."""
    apply(server, deployment(replicas=2), "team-a")

    code, body = apply(server, deployment(replicas=5), "team-b")

    assert code == 409
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Conflict", 409)
    assert body["message"] == (
        'Apply failed with 1 conflict: conflict with "team-a": .spec.replicas'
    )
    assert body["details"]["causes"] == [
        {
            "type": "FieldManagerConflict",
            "message": 'conflict with "team-a"',
            "field": ".spec.replicas",
        }
    ]
    assert server.objects[PATH].obj["spec"]["replicas"] == 2  # nothing changed


def test_several_conflicts_are_listed_per_manager(server):
    apply(server, deployment(replicas=2, image="nginx:1.27"), "team-a")

    code, body = apply(server, deployment(replicas=3, image="nginx:1.28"), "team-b")

    assert code == 409
    assert body["message"].startswith('Apply failed with 2 conflicts: conflicts with "team-a":')
    assert '- .spec.template.spec.containers[name="web"].image' in body["message"]


def test_an_update_manager_is_named_with_its_api_version(server):
    """`kubectl edit` (operation Update) takes the fields it changes; a later apply that
    disagrees conflicts with it, shown as `"kubectl-edit" using apps/v1`."""
    apply(server, deployment(replicas=2), "team-a")
    server.update(PATH, {(".spec", ".replicas"): 4}, manager="kubectl-edit")

    code, body = apply(server, deployment(replicas=2), "team-a")

    assert code == 409
    assert 'conflict with "kubectl-edit" using apps/v1: .spec.replicas' in body["message"]


def test_the_same_value_is_shared_ownership_not_a_conflict(server):
    """Shared ownership: two appliers that set a field to the same value both own it."""
    apply(server, deployment(replicas=2), "team-a")

    code, obj = apply(server, deployment(replicas=2), "team-b")

    assert code == 200
    owners = {e["manager"] for e in obj["metadata"]["managedFields"]}
    assert owners == {"team-a", "team-b"}


def test_force_takes_the_field_over(server):
    """Forcing: the value is overridden and the field is removed from the other managers."""
    apply(server, deployment(replicas=2), "team-a")

    code, obj = apply(server, deployment(replicas=5), "team-b", force="true")

    assert code == 200 and obj["spec"]["replicas"] == 5
    by_manager = {e["manager"]: e["fieldsV1"] for e in obj["metadata"]["managedFields"]}
    assert "f:replicas" not in by_manager["team-a"]["f:spec"]


def test_a_field_dropped_from_the_configuration_is_removed_unless_someone_else_owns_it(server):
    """Field removal: an applier that stops applying a field it alone owns removes it."""
    apply(server, deployment(replicas=2, minReadySeconds=5), "team-a")

    apply(server, deployment(replicas=2), "team-a")
    assert "minReadySeconds" not in server.objects[PATH].obj["spec"]

    apply(server, deployment(replicas=2, minReadySeconds=5), "team-a")
    apply(server, deployment(replicas=2, minReadySeconds=5), "team-b")
    apply(server, deployment(replicas=2), "team-a")
    assert server.objects[PATH].obj["spec"]["minReadySeconds"] == 5


def test_dry_run_all_admits_but_stores_nothing_and_other_values_are_refused(server):
    code, obj = apply(server, deployment(), "team-a", dryRun="All")
    assert code == 201 and obj["metadata"]["name"] == "web"
    assert server.objects == {}

    code, body = apply(server, deployment(), "team-a", dryRun="Server")
    assert code == 422 and 'dryRun: Unsupported value: ["Server"]' in body["message"]


def get(server: ApiServer, path: str = PATH) -> tuple[int, dict]:
    return server.handle("GET", path, {}, None, None)


def test_a_dry_run_answers_with_the_object_as_it_would_be_stored(server):
    """api-concepts#dry-run: a dry run goes through "the typical request stages (admission
    chain, validation, merge conflicts)" and "the response body for the request is as close
    as possible to a non-dry-run response"; generated values (uid, creationTimestamp) are
    set in it too ("Dry-run and generated values"). Defaulting is admission: the answer has
    the defaults the API reference documents (tests/kube_defaults.py)."""
    code, dry = apply(server, deployment(replicas=None), "team-a", dryRun="All")

    assert code == 201
    assert dry["spec"]["replicas"] == 1
    assert dry["spec"]["strategy"]["type"] == "RollingUpdate"
    container = dry["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert dry["metadata"]["uid"] and dry["metadata"]["creationTimestamp"]
    assert get(server)[0] == 404  # "Kubernetes guarantees that dry-run requests will not be
    # persisted in storage"

    code, real = apply(server, deployment(replicas=None), "team-a")

    def same(obj: dict) -> dict:
        meta = {k: v for k, v in obj["metadata"].items() if k not in ("uid", "resourceVersion")}
        return {**obj, "metadata": meta}

    assert code == 201 and same(real) == same(dry)


def test_a_dry_run_on_a_live_object_shows_the_merge_and_leaves_it_as_it_was(server):
    """server-side-apply: the server merges the applied configuration into the live object
    (fields others set stay); with dryRun=All that merged object is only the answer."""
    apply(server, deployment(image="nginx:1.27"), "team-a")
    server.update(PATH, {(".spec", ".minReadySeconds"): 5})
    _, live = get(server)

    _, dry = apply(server, deployment(image="nginx:1.28"), "team-a", dryRun="All")

    assert dry["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert dry["spec"]["minReadySeconds"] == 5  # kubectl-edit's field is kept
    assert get(server)[1]["spec"] == live["spec"]


def test_a_dry_run_meets_the_same_conflicts_as_the_apply(server):
    """api-concepts#dry-run: merge conflicts are one of the stages a dry run goes through."""
    apply(server, deployment(replicas=2), "team-a")

    code, body = apply(server, deployment(replicas=5), "team-b", dryRun="All")

    assert code == 409 and body["reason"] == "Conflict"


def test_a_get_carries_the_managed_fields_and_a_namespace_its_name_label(server):
    """server-side-apply, "Field management": the field owners are in `metadata.managedFields`
    of the object as read. Well-known labels: the API server sets
    `kubernetes.io/metadata.name` on every namespace."""
    apply(server, deployment(), "team-a")

    _, obj = get(server)
    _, namespace = get(server, f"/api/v1/namespaces/{NS}")

    assert [e["manager"] for e in obj["metadata"]["managedFields"]] == ["team-a"]
    assert namespace["metadata"]["labels"] == {"kubernetes.io/metadata.name": NS}
    assert get(server, "/api/v1/namespaces/elsewhere")[0] == 404


def test_apply_needs_a_field_manager_of_at_most_128_characters(server):
    code, body = server.handle("PATCH", PATH, {}, APPLY, deployment())
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
        "for apply patch"
    )
    code, body = apply(server, deployment(), "m" * 129)
    assert code == 422 and "fieldManager: Too long" in body["message"]


def test_an_object_in_a_namespace_that_does_not_exist_is_a_404(server):
    """NamespaceLifecycle admission refuses objects in a missing namespace, dry run too."""
    body = deployment()
    body["metadata"]["namespace"] = "gone"
    path = PATH.replace(f"/{NS}/", "/gone/")

    code, status = server.handle("PATCH", path, {"fieldManager": "a", "dryRun": "All"}, APPLY, body)

    assert code == 404
    assert status["details"] == {"name": "gone", "kind": "namespaces"}


def test_the_real_client_turns_a_conflict_into_a_sentence_with_the_managers(server):
    """The `Cluster` over the stand-in: the same paths and errors as against a real cluster."""
    cluster = FakeCluster(server)
    cluster.apply(deployment(replicas=2), dry_run=False, field_manager="idp-copilot/acme/a")

    with pytest.raises(ClusterError) as err:
        cluster.apply(deployment(replicas=3), dry_run=False, field_manager="idp-copilot/acme/b")

    assert err.value.status == 409
    assert err.value.conflicts == [('"idp-copilot/acme/a"', ".spec.replicas")]
    assert "the App never forces" in str(err.value)


def test_the_simulated_controller_reports_a_rollout_like_a_deployment_does(server):
    """https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#deployment-status"""
    cluster = FakeCluster(server)
    server.rollout = "progressing"
    cluster.apply(deployment(replicas=2), dry_run=False, field_manager="a")

    first = cluster.read("apps/v1", "Deployment", NS, "web")
    second = cluster.read("apps/v1", "Deployment", NS, "web")
    third = cluster.read("apps/v1", "Deployment", NS, "web")

    assert first["status"]["observedGeneration"] < first["metadata"]["generation"]
    assert second["status"]["availableReplicas"] == 0
    assert third["status"]["availableReplicas"] == 2
    assert cluster.read("apps/v1", "Deployment", NS, "nope") is None
