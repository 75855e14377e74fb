"""The plan a maintainer approves, seen from GitHub and the cluster: the todo before approval
(and after `/idp plan`) shows each waiting cluster step's server-side dry run, object by
object, in one collapsed section linking to a check run with the full plan; `/idp apply`
approves that plan's digest, and an apply whose plan changed since then applies nothing
and waits for a new approval. The rules planner, no model: the App makes the plan."""

from __future__ import annotations

import pytest

from app.domain.approval import approval_digest, short
from app.domain.plan_render import CHECK_NAME
from app.domain.todo import Task
from tests.job_world import World
from tests.test_pr_commands import CREATE, NAMESPACE

APPLY = "application/apply-patch+yaml"
BASE = "services/payments-api/k8s/base"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/payments-api"


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    return World(settings, redis_conn, no_unmocked_http, monkeypatch)


def task(world: World, tool: str) -> Task:
    (found,) = [t for t in world.session.todo.tasks if t.tool == tool]
    return found


def plan_checks(world: World) -> list[dict]:
    return [c for c in world.github.check_runs if c["name"] == CHECK_NAME]


def someone_applies(world: World, path: str, body: dict, manager: str = "kubectl") -> None:
    """Another team's server-side apply, straight to the API server."""
    code, _ = world.cluster.server.handle("PATCH", path, {"fieldManager": manager}, APPLY, body)
    assert code in (200, 201)


def namespace(labels: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": labels}}  # fmt: skip


def test_the_todo_before_approval_shows_the_dry_run_plan_and_links_the_check_run(world):
    world.comment(CREATE)

    todo = world.todo()
    assert "<details>\n<summary>Cluster plan: 3 to create, 0 to change, 0 unchanged</summary>" in (
        todo
    )
    assert f"- ➕ create Namespace `{NAMESPACE}`" in todo
    assert "- ➕ create Deployment `payments-api`" in todo
    assert f"namespace {NAMESPACE} does not exist yet" in todo
    (check,) = plan_checks(world)
    assert check["head_sha"] == world.session.head_sha and check["conclusion"] == "neutral"
    assert check["output"]["title"] == "Cluster plan: 3 to create, 0 to change, 0 unchanged"
    assert "- ➕ create Service `payments-api`" in check["output"]["summary"]
    link = f"{world.session.pr_url}/checks?check_run_id={check['id']}"
    assert f"The full plan is in the check run [{CHECK_NAME}]({link})." in todo
    assert world.cluster.writes == []
    assert task(world, "deploy_to_staging").plan is not None


def test_idp_plan_shows_what_changes_on_a_live_cluster_and_publishes_a_new_plan_once(world):
    world.comment(CREATE)
    # Before the App's apply: the namespace exists (another team's label on it) and an
    # older Deployment of the service is there, applied by the App's own field manager.
    someone_applies(world, f"/api/v1/namespaces/{NAMESPACE}", namespace({"cost-center": "7"}))
    old = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "payments-api", "namespace": NAMESPACE,
                        "labels": {"team": "payments"}}}  # fmt: skip
    someone_applies(world, DEPLOYMENT, old, manager="idp-copilot/acme/payments")

    world.comment("/idp plan", number=world.pr_number(), on_pr=True)

    todo = world.todo()
    assert "Cluster plan: 1 to create, 2 to change, 0 unchanged" in todo
    assert f"- ✏️ change Namespace `{NAMESPACE}` (" in todo
    assert "- ✏️ change Deployment `payments-api` (" in todo
    assert "  - `.metadata.labels.team`: `payments` → `checkout`" in todo
    assert "- ➕ create Service `payments-api`" in todo
    assert len(plan_checks(world)) == 2  # the plan changed: a new check run
    assert world.cluster.writes == []

    world.comment("/idp plan", number=world.pr_number(), on_pr=True)

    assert len(plan_checks(world)) == 2  # the same plan on the same head: not again


def test_an_apply_whose_plan_changed_since_approval_applies_nothing_and_waits_again(world):
    world.comment(CREATE)
    shown = task(world, "create_k8s_namespace").digest
    # Between the todo and the apply, someone else creates the namespace.
    someone_applies(world, f"/api/v1/namespaces/{NAMESPACE}", namespace({"owner": "ops"}))

    world.comment("/idp apply", sender="mia")

    assert world.cluster.writes == []
    waiting = task(world, "create_k8s_namespace")
    assert waiting.status == "waiting_approval" and waiting.digest != shown
    todo = world.todo()
    assert (
        "🔓 Approval voided for `create_k8s_namespace`: the dry run now plans other changes "
        f"than the plan `@mia` approved (digest `{short(shown)}`)"
    ) in todo
    assert f"- ✏️ change Namespace `{NAMESPACE}`" in todo
    assert f"digest `{short(waiting.digest)}`" in todo

    world.comment("/idp apply", sender="mia")

    assert [c[0] for c in world.cluster.writes] == ["namespace", "apply", "apply"]
    assert world.session.status == "done"


def test_the_plan_approved_is_the_plan_applied(world):
    world.comment(CREATE)
    shown = {t.tool: t.digest for t in world.session.todo.tasks if t.status == "waiting_approval"}

    world.comment("/idp apply", sender="mia")

    assert {a.tool: a.digest for a in world.session.approvals} == shown
    assert [c[1] for c in world.cluster.writes if c[0] == "apply"] == ["Service", "Deployment"]


def test_without_a_cluster_the_todo_says_so_and_the_digest_covers_the_objects(
    world, monkeypatch, tmp_path
):
    from kubernetes.config import kube_config

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "none"))
    world.cluster = None  # the job builds the real client from settings, which have none

    world.comment(CREATE)

    todo = world.todo()
    assert (
        "<summary>Cluster plan: no cluster reached · 3 objects would be applied</summary>" in todo
    )
    assert "_No cluster was asked, so this lists what would be applied: no Kubernetes " in todo
    assert "- ❔ would apply Deployment `payments-api`" in todo
    # the todo holds the whole plan: no check run to repeat it, and no link to one
    assert plan_checks(world) == [] and "The full plan is in the check run" not in todo
    deploy = task(world, "deploy_to_staging")
    assert [o.action for o in deploy.plan.objects] == ["unknown", "unknown"]
    files = {p: t for p, t in world.github.files(world.session.branch).items()
             if p.startswith(f"{BASE}/")}  # fmt: skip
    args = {"service": "payments-api", "manifests_dir": BASE}
    target = f"namespace `{NAMESPACE}`"
    with_plan = approval_digest("deploy_to_staging", args, files, target, deploy.plan.digest)
    assert deploy.digest == with_plan != approval_digest("deploy_to_staging", args, files, target)


def test_with_a_model_that_stops_at_once_the_app_still_shows_the_plan(world):
    """The model plans nothing and calls nothing: the App's backstop plans, and the App, not
    the model, dry-runs the waiting cluster steps."""
    from app.agent.providers.base import ModelTurn, Usage
    from app.agent.providers.scripted import ScriptedChatModel

    model = ScriptedChatModel(
        [ModelTurn(text="Done.", tool_calls=[], usage=Usage(input_tokens=1))], repeat_last=True
    )

    world.comment(CREATE, chat_model=model)

    todo = world.todo()
    assert "<summary>Cluster plan: 3 to create, 0 to change, 0 unchanged</summary>" in todo
    assert task(world, "deploy_to_staging").plan is not None
    assert world.cluster.writes == []
