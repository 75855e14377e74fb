"""The cluster plan (app/domain/plan.py, tools/cluster_plan.py): a server-side dry run of each
object compared with the live one — created, changed (the fields, before → after), unchanged
— with the server's own bookkeeping left out, nothing written to the cluster, and the plan
kept within what GitHub accepts in a comment and a check run."""

from __future__ import annotations

import asyncio
import copy

import pytest

from app.domain.plan import HIDDEN, ClusterPlan, comparable, field_changes, object_plan
from app.domain.plan_render import CHECK_LIMIT, full_plan, needs_check_run, plan_section
from app.domain.todo import Task, Todo, render_todo
from tests import test_cluster_tools as cluster_tools
from tests.kube_standin import ApiServer, FakeCluster
from tests.test_cluster_tools import EXPECTED_ORDER, MANAGER, NS, base_files
from tests.test_staging_deploy import HEAD, IMAGE, context
from tools.builtin.cluster import deploy_to_staging, plan_deploy, plan_namespace
from tools.builtin.cluster_io import DeployInput, NamespaceInput
from tools.cluster import ClusterError
from tools.render_k8s import StagingPlace, render_k8s
from tools.render_workflow import image_tag
from tools.staging import StagingPolicy

# The loopback API server and the real client's contexts, as the cluster tools' tests use them.
api, make_ctx = cluster_tools.api, cluster_tools.make_ctx
COMMENT_LIMIT = 65_536  # GitHub's limit on an issue comment's body
NEXT = "4b6d8f0e9c1e5d7a3b2f4e6d8c0a1b3d5f7e9a2c"


def deployment(image: str = "nginx:1.27", **meta) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", **meta},
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "web", "image": image}]}},
        },
    }


# -- the diff, pure ---------------------------------------------------------------------------


def test_server_bookkeeping_is_not_a_change():
    live = deployment(
        resourceVersion="41",
        uid="u-1",
        creationTimestamp="2026-05-04T10:00:00Z",
        generation=3,
        managedFields=[{"manager": "kubectl"}],
        annotations={"deployment.kubernetes.io/revision": "3"},
    )
    live["status"] = {"readyReplicas": 2}
    result = deployment(resourceVersion="42", uid="u-1", generation=4, managedFields=[])

    assert field_changes(live, result) == []
    assert object_plan(deployment(), live, result).action == "unchanged"
    assert "annotations" not in comparable(live)["metadata"]


def test_a_changed_field_is_named_by_its_path_with_both_values():
    live, result = deployment("nginx:1.27"), deployment("nginx:1.28")
    result["metadata"]["labels"] = {"app.kubernetes.io/name": "web"}

    plan = object_plan(deployment("nginx:1.28"), live, result)

    assert plan.action == "change"
    assert [(c.path, c.before, c.after) for c in plan.changes] == [
        ('.metadata.labels["app.kubernetes.io/name"]', None, "web"),
        ('.spec.template.spec.containers[name="web"].image', "nginx:1.27", "nginx:1.28"),
    ]


def test_a_secrets_values_never_reach_the_plan_but_their_change_does():
    def secret(value: str) -> dict:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                "data": {"password": value}}  # fmt: skip

    plan = object_plan(secret("bmV3"), secret("b2xk"), secret("bmV3"))

    (change,) = plan.changes
    assert (change.path, change.before, change.after) == (".data.password", HIDDEN, HIDDEN)
    assert "b2xk" not in plan.model_dump_json() and "bmV3" not in plan.model_dump_json()
    same = object_plan(secret("bmV3"), secret("b2xk"), secret("bmV4"))
    assert same.digest != plan.digest  # the digest still tells the two values apart


def test_the_digest_covers_the_body_and_the_change_not_the_noise():
    live = deployment("nginx:1.27")
    a = object_plan(deployment("nginx:1.28"), live, deployment("nginx:1.28", uid="x"))
    b = object_plan(deployment("nginx:1.28"), live, deployment("nginx:1.28", uid="y"))
    c = object_plan(deployment("nginx:1.29"), live, deployment("nginx:1.29"))

    assert a.digest == b.digest != c.digest
    created = object_plan(deployment(), None, None)
    unknown = object_plan(deployment(), None, None, reached=False)
    assert created.action == "create" and unknown.action == "unknown"
    assert created.digest != unknown.digest


# -- the dry run against the stand-in API server ---------------------------------------------


@pytest.fixture
def staged(settings):
    configured = settings.model_copy(
        update={"staging_ingress_domains": "staging.acme.dev", "staging_rollout_poll": 0.0}
    )
    policy = StagingPolicy.from_settings(configured)
    namespace = policy.namespace_for("acme/shop")
    place = StagingPlace(namespace, policy.staging_host("shop-web"))
    from tests.test_staging_deploy import REQUEST

    return configured, namespace, render_k8s(REQUEST, image=IMAGE, staging=place)


def snapshot(server: ApiServer) -> dict:
    return {path: copy.deepcopy(s.obj) for path, s in server.objects.items()}


def test_a_plan_shows_created_changed_and_unchanged_objects_and_writes_nothing(staged):
    settings, namespace, files = staged
    cluster = FakeCluster(ApiServer(namespaces={namespace}))
    asyncio.run(
        deploy_to_staging(DeployInput(service="shop-web"), context(settings, files, cluster))
    )
    ingress = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/shop-web"
    del cluster.server.objects[ingress]  # someone deleted it
    service = f"/api/v1/namespaces/{namespace}/services/shop-web"
    cluster.server.update(service, {(".metadata", ".annotations", ".owner"): "ops"})
    before, writes, n = snapshot(cluster.server), list(cluster.writes), len(cluster.calls)

    plan = asyncio.run(
        plan_deploy(
            DeployInput(service="shop-web"),
            context(settings, files, cluster, approved=False, head=NEXT),
        )
    )

    actions = {o.label: o.action for o in plan.objects}
    assert actions["Ingress shop-web"] == "create"
    assert actions["Deployment shop-web"] == "change"
    assert actions["Service shop-web"] == "unchanged"  # a field someone else set stays
    assert set(actions.values()) == {"create", "change", "unchanged"}
    (deployment_plan,) = [o for o in plan.objects if o.kind == "Deployment"]
    (change,) = deployment_plan.changes
    assert change.path == '.spec.template.spec.containers[name="shop-web"].image'
    assert (change.before, change.after) == (
        f"{IMAGE}:{image_tag(HEAD)}",
        f"{IMAGE}:{image_tag(NEXT)}",
    )
    assert snapshot(cluster.server) == before and cluster.writes == writes
    dry_runs = cluster.calls[n:]
    assert len(dry_runs) == len(plan.objects) and all(call[-1] is True for call in dry_runs)


def test_the_namespace_plan_is_a_dry_run_of_ensure_namespace(staged):
    settings, namespace, files = staged
    cluster = FakeCluster(ApiServer())
    ctx = context(settings, files, cluster, approved=False)

    created = asyncio.run(plan_namespace(NamespaceInput(), ctx))
    asyncio.run(plan_namespace(NamespaceInput(), ctx))

    assert [o.action for o in created.objects] == ["create"]
    assert cluster.calls == [("namespace", namespace, True)] * 2 and cluster.server.objects == {}


def test_a_deploy_into_a_namespace_not_there_yet_is_all_created_with_a_note(staged):
    settings, namespace, files = staged
    cluster = FakeCluster(ApiServer())

    plan = asyncio.run(
        plan_deploy(
            DeployInput(service="shop-web"), context(settings, files, cluster, approved=False)
        )
    )

    assert {o.action for o in plan.objects} == {"create"} and len(plan.objects) > 3
    assert f"namespace {namespace} does not exist yet" in (plan.note or "")
    assert cluster.calls == []  # nothing to dry-run against: the namespace read said so


def test_a_refused_dry_run_is_shown_with_the_servers_words(staged):
    settings, namespace, files = staged
    cluster = FakeCluster(ApiServer(namespaces={namespace}))
    ctx = context(settings, files, cluster, approved=False)
    real = cluster.apply

    def refuse(obj, **kw):
        if obj["kind"] == "Ingress":
            raise ClusterError("Kubernetes API PATCH failed with 422: host is invalid.", status=422)
        return real(obj, **kw)

    cluster.apply = refuse  # type: ignore[method-assign]
    plan = asyncio.run(plan_deploy(DeployInput(service="shop-web"), ctx))

    (ingress,) = [o for o in plan.objects if o.kind == "Ingress"]
    assert ingress.action == "refused" and "422: host is invalid" in (ingress.reason or "")


def test_without_a_cluster_the_plan_says_so_and_lists_what_would_be_applied(staged):
    settings, _, files = staged

    class Nowhere(FakeCluster):
        def read(self, *args):
            raise ClusterError("no Kubernetes credentials: set KUBECONFIG for the worker.")

    plan = asyncio.run(
        plan_deploy(
            DeployInput(service="shop-web"), context(settings, files, Nowhere(), approved=False)
        )
    )

    assert not plan.reached and "no Kubernetes credentials" in (plan.note or "")
    assert {o.action for o in plan.objects} == {"unknown"} and len(plan.objects) > 3
    section = "\n".join(plan_section([("Deploy to staging", plan)], None))
    assert "no cluster reached" in section and "would apply Deployment `shop-web`" in section


# -- bounded for GitHub ------------------------------------------------------------------------


def huge_plan() -> ClusterPlan:
    """600 objects, each with 60 changed fields of long values."""
    objects = []
    for i in range(600):
        live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"},
                "data": {f"k{j}": "a" * 500 for j in range(60)}}  # fmt: skip
        new = copy.deepcopy(live)
        new["data"] = {k: "b" * 500 for k in live["data"]}
        objects.append(object_plan(new, live, new))
    return ClusterPlan(tool="deploy_to_staging", target="shop", objects=objects)


def test_a_huge_plan_fits_one_comment_and_one_check_run():
    plan = huge_plan()
    task = Task(id="t9", title="Deploy to staging", tool="deploy_to_staging",
                status="waiting_approval", digest="ab" * 32, plan=plan)  # fmt: skip
    todo = Todo(title="New service `shop`", tasks=[task], plan_link="[IDP Copilot plan](u)")

    comment = render_todo(todo, "acme/shop#1")
    full = full_plan([(task.title, plan)])

    assert len(comment) < COMMENT_LIMIT and len(full) <= CHECK_LIMIT < 65_535
    assert comment.count("<details>") == comment.count("</details>") == 1
    assert "more objects: see the check run." in comment
    assert "The full plan is in the check run [IDP Copilot plan](u)." in comment
    assert full.endswith("the rest is not shown._\n")
    assert "- ✏️ change ConfigMap `c0` (60 fields)" in comment
    assert "  - … and 50 more fields" in comment  # 10 in the todo, the rest in the check run
    # The session keeps the details of at most MAX_PLAN_CHANGES fields, and counts the rest.
    assert len(plan.model_dump_json()) < 300_000
    assert plan.objects[-1].changes == [] and plan.objects[-1].more_changes == 60


def test_a_plan_needs_a_check_run_when_a_cluster_answered_or_the_todo_cannot_show_it_all():
    unreached = huge_plan().model_copy(update={"reached": False})
    small = unreached.model_copy(update={"objects": unreached.objects[:3]})

    assert needs_check_run([("Deploy", huge_plan())])  # a cluster answered
    assert needs_check_run([("Deploy", unreached)])  # 600 objects: the todo counts the rest
    assert not needs_check_run([("Deploy", small)])  # the todo lists every object


# -- through the real client -------------------------------------------------------------------


def test_the_real_client_plans_with_gets_and_dry_run_patches_only(api, make_ctx):
    """The kubernetes client behind `KubernetesCluster`, over HTTP to the stand-in: a plan
    sends GETs and server-side apply PATCHes with `dryRun=All` and the repository's field
    manager, never a write."""
    api.namespaces.add(NS)

    plan = asyncio.run(
        plan_deploy(DeployInput(service="payments-api"), make_ctx(files=base_files()))
    )

    assert {o.action for o in plan.objects} == {"create"} and len(plan.objects) == 8
    patches = [c for c in api.calls if c.method == "PATCH"]
    assert [(c.method, c.path) for c in patches] == EXPECTED_ORDER
    assert all(c.query == {"fieldManager": MANAGER, "dryRun": "All"} for c in patches)
    assert {c.method for c in api.calls} == {"GET", "PATCH"}
    assert api.server.objects == {}


def test_a_step_that_cannot_be_planned_says_why_and_has_no_objects(settings):
    from app.agent.change_plan import make_plan
    from app.domain.session import Session
    from app.github.forge import RepoRef
    from tools.builtin.cluster import TOOLS

    (spec,) = [s for s in TOOLS if s.name == "deploy_to_staging"]
    session = Session(id="acme/shop#3", repo="acme/shop", number=3)

    plan = asyncio.run(
        make_plan(spec, {"service": "shop-web"}, {}, settings=settings, session=session,
                  forge=None, repo=RepoRef("acme", "shop"), cluster=FakeCluster())
    )  # fmt: skip

    assert not plan.reached and plan.objects == []
    assert "No plan could be made: no manifests under services/shop-web/k8s/base/" in plan.note
    section = "\n".join(plan_section([("Deploy to staging", plan)], None))
    assert "**Deploy to staging** · `deploy_to_staging`\n_No plan could be made" in section
