"""`deploy_to_staging` end to end on the rendered files: it applies what the staging overlay
describes (namespace, replica range, host) with the image CI pushed for the head commit, as
the repository's own field manager, and waits for the rollout; the operator's rules refuse
what does not belong in staging. The cluster is the stand-in API server
(tests/kube_standin.py); where kubectl is installed the objects are compared with
`kubectl kustomize` of the same files."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.domain.service import ServiceRequest
from app.domain.session import Session
from app.github.forge import RepoRef
from tests.kube_standin import ApiServer, FakeCluster
from tools.builtin.cluster import create_k8s_namespace
from tools.builtin.cluster import deploy_to_staging as deploy
from tools.builtin.cluster_io import DeployInput, NamespaceInput
from tools.render_k8s import StagingPlace, render_k8s
from tools.render_workflow import image_tag, render_workflow
from tools.spec import ToolContext, ToolError
from tools.staging import StagingPolicy

REPO = RepoRef("acme", "shop")
HEAD = "9c1e5d7a3b2f4e6d8c0a1b3d5f7e9a2c4b6d8f0e"
DOMAIN = "staging.acme.dev"
REQUEST = ServiceRequest(name="shop-web", language="node", type="web", team="storefront")
IMAGE = "ghcr.io/acme/shop-web"
BASE = "services/shop-web/k8s/base"


@pytest.fixture
def staged(settings):
    """Settings with a staging domain, the namespace the rule gives acme/shop, and the
    service's files rendered for it (what generate_k8s_manifests commits)."""
    configured = settings.model_copy(
        update={"staging_ingress_domains": DOMAIN, "staging_rollout_poll": 0.0}
    )
    policy = StagingPolicy.from_settings(configured)
    namespace = policy.namespace_for(REPO.full_name)
    place = StagingPlace(namespace, policy.staging_host(REQUEST.name))
    files = render_k8s(REQUEST, image=IMAGE, staging=place)
    return configured, namespace, files


def context(settings, files, cluster, *, approved=True, head=HEAD, request=REQUEST):
    session = Session(id="acme/shop#3", repo=REPO.full_name, number=3, request=request)
    session.head_sha = head
    return ToolContext(
        settings=settings,
        session=session,
        repo=REPO,
        cluster=cluster,
        approved=approved,
        files=dict(files),
    )


def run(coro):
    return asyncio.run(coro)


def cluster_with(namespace: str, **kw: Any) -> FakeCluster:
    return FakeCluster(ApiServer(namespaces={namespace}, **kw))


def by_name(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_the_deploy_applies_the_staging_overlay_with_the_head_commits_image(staged):
    settings, namespace, files = staged
    cluster = cluster_with(namespace)

    out = run(deploy(DeployInput(service="shop-web"), context(settings, files, cluster)))

    applied = by_name(cluster.applied)
    hpa = applied[("HorizontalPodAutoscaler", "shop-web")]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 2)  # staging's range, not prod's
    ingress = applied[("Ingress", "shop-web")]["spec"]
    assert ingress["rules"][0]["host"] == f"shop-web.{DOMAIN}"
    assert ingress["tls"][0]["hosts"] == [f"shop-web.{DOMAIN}"]
    container = applied[("Deployment", "shop-web")]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{IMAGE}:sha-{HEAD[:12]}"
    assert {o["metadata"]["namespace"] for o in cluster.applied} == {namespace}
    assert all(
        o["metadata"]["labels"]["app.kubernetes.io/environment"] == "staging"
        for o in cluster.applied
    )
    assert set(cluster.managers) == {"idp-copilot/acme/shop"}
    assert out.image == f"{IMAGE}:sha-{HEAD[:12]}"
    assert out.summary.startswith("Rolled out shop-web: 1 of 1 replicas available")
    assert f"commit {HEAD[:12]}" in out.summary


def test_the_objects_applied_are_what_kubectl_kustomize_builds(staged, tmp_path: Path):
    """The in-process build against kustomize itself, on the same rendered files, with the
    image tag set as `kustomize edit set image` would."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    settings, namespace, files = staged
    cluster = cluster_with(namespace)
    run(deploy(DeployInput(service="shop-web"), context(settings, files, cluster)))

    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    overlay = tmp_path / "services/shop-web/k8s/overlays/staging"
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    kustomization["images"] = [{"name": IMAGE, "newTag": image_tag(HEAD)}]
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    done = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    built = [d for d in yaml.safe_load_all(done.stdout) if d]

    assert by_name(cluster.applied) == by_name(built)


def test_an_ingress_host_outside_the_operators_domains_is_refused(staged):
    settings, namespace, files = staged
    path = "services/shop-web/k8s/overlays/staging/kustomization.yaml"
    files = {**files, path: files[path].replace(f"shop-web.{DOMAIN}", "shop.acme.com")}
    cluster = cluster_with(namespace)

    with pytest.raises(ToolError) as err:
        run(deploy(DeployInput(service="shop-web"), context(settings, files, cluster)))

    assert "asks for host 'shop.acme.com', outside the domains the operator allows" in str(
        err.value
    )
    assert f"IDP_STAGING_INGRESS_DOMAINS: {DOMAIN}" in str(err.value)
    assert cluster.calls == []


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "PersistentVolume"),
        ("apiregistration.k8s.io/v1", "APIService"),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
        ("networking.k8s.io/v1", "IngressClass"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("v1", "Secret"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ],
)
def test_kinds_off_the_operators_list_are_refused_before_anything_is_applied(
    staged, api_version, kind
):
    settings, namespace, files = staged
    extra = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "grab"}}
    files = {**files, f"{BASE}/extra.yaml": yaml.safe_dump(extra)}
    cluster = cluster_with(namespace)

    with pytest.raises(ToolError, match=f"{kind} grab") as err:
        run(deploy(DeployInput(service="shop-web"), context(settings, files, cluster)))

    assert "cluster-scoped" in str(err.value) or "IDP_STAGING_KINDS" in str(err.value)
    assert cluster.calls == []


def test_a_field_another_manager_owns_is_reported_as_a_conflict_never_forced(staged):
    """Two repositories the operator maps to one namespace: the second cannot take the
    first one's Deployment over; the todo names the owner."""
    settings, namespace, files = staged
    cluster = cluster_with(namespace)
    other = FakeCluster(cluster.server)
    theirs = by_name(yaml.safe_load_all(files[f"{BASE}/deployment.yaml"]))[
        ("Deployment", "shop-web")
    ]
    theirs["metadata"]["namespace"] = namespace
    theirs["spec"]["revisionHistoryLimit"] = 1
    other.apply(theirs, dry_run=False, field_manager="idp-copilot/acme-other/shop")

    with pytest.raises(ToolError) as err:
        run(deploy(DeployInput(service="shop-web"), context(settings, files, cluster)))

    message = str(err.value)
    assert message.startswith("Deployment shop-web: 409 Conflict:")
    assert '"idp-copilot/acme-other/shop" already owns .spec.revisionHistoryLimit' in message
    assert "never forces" in message
    stored = cluster.server.objects[
        f"/apis/apps/v1/namespaces/{namespace}/deployments/shop-web"
    ].obj
    assert stored["spec"]["revisionHistoryLimit"] == 1


def test_a_rollout_stuck_on_a_missing_image_says_ci_has_not_pushed_it(staged):
    settings, namespace, files = staged
    cluster = cluster_with(namespace, rollout="image-pull")
    settings = settings.model_copy(update={"staging_rollout_timeout": 0.0})

    with pytest.raises(ToolError) as err:
        run(deploy(DeployInput(service="shop-web"), context(settings, files, cluster)))

    message = str(err.value)
    assert "the rollout is not finished after 0s: 0 of 1 updated replicas" in message
    assert "ImagePullBackOff" in message
    assert f"CI may not have pushed {IMAGE}:sha-{HEAD[:12]} yet" in message
    assert "/idp retry" in message


def test_a_rollout_past_its_progress_deadline_fails_at_once(staged):
    settings, namespace, files = staged
    cluster = cluster_with(namespace, rollout="deadline")

    with pytest.raises(ToolError, match="the rollout failed: Deployment shop-web exceeded"):
        run(deploy(DeployInput(service="shop-web"), context(settings, files, cluster)))


def test_the_deploy_waits_while_the_rollout_progresses(staged):
    settings, namespace, files = staged
    cluster = cluster_with(namespace, rollout="progressing", progressing_reads=3)

    out = run(deploy(DeployInput(service="shop-web"), context(settings, files, cluster)))

    stored = cluster.server.objects[f"/apis/apps/v1/namespaces/{namespace}/deployments/shop-web"]
    assert stored.reads == 4  # observed, updated, partly available, then rolled out
    assert out.rollout.startswith("Rolled out shop-web:")


def test_without_a_published_commit_a_real_deploy_waits_for_ci_and_a_dry_run_goes_on(staged):
    settings, namespace, files = staged
    cluster = cluster_with(namespace)

    with pytest.raises(ToolError, match="Waiting for CI: no commit of shop-web"):
        run(deploy(DeployInput(service="shop-web"), context(settings, files, cluster, head=None)))
    out = run(
        deploy(
            DeployInput(service="shop-web"),
            context(settings, files, cluster, head=None, approved=False),
        )
    )
    assert out.dry_run and "No commit yet" in out.summary and cluster.applied == []


def test_an_overlay_naming_another_namespace_is_refused(staged):
    settings, namespace, files = staged
    path = "services/shop-web/k8s/overlays/staging/kustomization.yaml"
    files = {**files, path: files[path].replace(namespace, "kube-system")}

    with pytest.raises(ToolError, match="names namespace 'kube-system', but the operator puts"):
        run(deploy(DeployInput(service="shop-web"), context(settings, files, FakeCluster())))


def test_the_namespace_comes_from_the_repository_not_the_team(staged):
    settings, namespace, files = staged
    cluster = FakeCluster()
    ctx = context(settings, files, cluster)

    out = run(create_k8s_namespace(NamespaceInput(name="shop-web", team="evil-team"), ctx))

    assert out.namespace == namespace and out.labels["team"] == "evil-team"
    assert cluster.calls == [("namespace", namespace, False)]
    assert cluster.managers == ["idp-copilot/acme/shop"]


def test_the_workflow_pushes_the_tag_the_deploy_runs_for_the_apps_branch():
    (text,) = render_workflow(REQUEST).values()
    workflow = yaml.safe_load(text)

    assert "idp/**" in workflow["on"]["push"]["branches"]
    assert 'tags="${image}:sha-${SHA::12}"' in text
    assert image_tag(HEAD) == f"sha-{HEAD[:12]}"


def test_apply_on_github_deploys_the_pull_requests_head_image_and_the_todo_says_so(
    settings, redis_conn, no_unmocked_http, monkeypatch
):
    """The whole chain with the real generators: the rendered overlay, the App's pull
    request, `/idp apply` by a maintainer, the rollout outcome in the todo."""
    from tests.job_world import World

    world = World(settings, redis_conn, no_unmocked_http, monkeypatch, real_tools=True)
    world.comment("/idp create-service payments-api --lang go --team checkout")
    world.comment("/idp apply", sender="mia")

    head = world.session.head_sha
    namespace = StagingPolicy.from_settings(world.settings).namespace_for("acme/payments")
    deployment = by_name(world.cluster.applied)[("Deployment", "payments-api")]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"ghcr.io/acme/payments-api:sha-{head[:12]}"
    assert {o["metadata"]["namespace"] for o in world.cluster.applied} == {namespace}
    todo = world.todo()
    assert "- [x] Deploy to staging — Rolled out payments-api: 1 of 1" in todo
    overlay = world.github.files(world.session.branch)[
        "services/payments-api/k8s/overlays/staging/kustomization.yaml"
    ]
    assert f"namespace: {namespace}" in overlay
