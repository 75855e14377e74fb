"""Approval binds to what it saw (issue 16, point 3), seen from GitHub and the cluster: the
todo lists each call waiting for `/idp apply` with its target and digest; `/idp apply`
approves those digests; a change to the files or the arguments afterwards (a human commit,
`/idp set`, a model picking other arguments) voids the approval and says so; and a merge
deploys only when someone who may apply stands behind it."""

from __future__ import annotations

import re

import pytest

from app.domain.approval import approval_digest, short
from app.domain.todo import Task
from tests.job_world import World
from tests.test_pr_commands import CREATE, NAMESPACE, merged_payload
from tools.cluster import ClusterError

BASE = "services/payments-api/k8s/base"
DEPLOY_ARGS = {"service": "payments-api", "manifests_dir": BASE}
TARGET = f"namespace `{NAMESPACE}`"


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch)
    world.comment(CREATE)
    return world


def manifests(files: dict[str, str]) -> dict[str, str]:
    return {p: t for p, t in files.items() if p.startswith(f"{BASE}/")}


def deploy_task(world: World) -> Task:
    (task,) = [t for t in world.session.todo.tasks if t.tool == "deploy_to_staging"]
    return task


def applied(world: World) -> list[tuple]:
    return [c for c in world.cluster.writes if c[0] == "apply" and not c[-1]]


def human_commit(world: World, path: str, text: str) -> None:
    world.github.push(world.session.branch, {path: text}, "Tune the deployment by hand")


def test_the_todo_lists_each_waiting_call_with_its_target_and_the_digest_of_its_files(world):
    branch_files = world.github.files(world.session.branch)
    plan = deploy_task(world).plan.digest  # the dry-run plan the todo shows (test_plan.py)
    digest = approval_digest(
        "deploy_to_staging", DEPLOY_ARGS, manifests(branch_files), TARGET, plan
    )

    todo = world.todo()

    assert "### Waiting for `/idp apply`" in todo
    assert f"- 🔒 `deploy_to_staging` → namespace `{NAMESPACE}` · 2 files · digest " in todo
    assert f"digest `{short(digest)}`" in todo and deploy_task(world).digest == digest
    namespace_line = next(line for line in todo.splitlines() if "`create_k8s_namespace`" in line)
    assert re.fullmatch(
        rf"- 🔒 `create_k8s_namespace` → namespace `{NAMESPACE}` · digest `[0-9a-f]{{12}}`",
        namespace_line,
    )


def test_apply_approves_the_shown_digests_and_names_the_approver(world):
    shown = {t.tool: t.digest for t in world.session.todo.tasks if t.status == "waiting_approval"}

    world.comment("/idp apply", sender="mia")

    approvals = {a.tool: (a.digest, a.by) for a in world.session.approvals}
    assert approvals == {tool: (digest, "mia") for tool, digest in shown.items()}
    assert len(applied(world)) == 2
    assert "### Waiting for `/idp apply`" not in world.todo()


def test_a_human_commit_after_the_todo_was_shown_is_refused_then_approved_anew(world):
    shown = deploy_task(world).digest
    edited = world.github.files(world.session.branch)[f"{BASE}/service.yaml"] + "# by hand\n"
    human_commit(world, f"{BASE}/service.yaml", edited)

    world.comment("/idp apply", sender="mia")

    assert applied(world) == []
    todo = world.todo()
    assert (
        f"🔓 Approval voided for `deploy_to_staging`: the files on branch "
        f"{world.session.branch} are not the ones `@mia` approved (digest `{short(shown)}`), "
        "so nothing was applied."
    ) in todo
    head = manifests(world.github.files(world.session.branch))
    now = approval_digest(
        "deploy_to_staging", DEPLOY_ARGS, head, TARGET, deploy_task(world).plan.digest
    )
    assert deploy_task(world).status == "waiting_approval" and deploy_task(world).digest == now
    assert f"digest `{short(now)}`" in todo

    world.comment("/idp apply", sender="mia")

    assert [c[1] for c in applied(world)] == ["Service", "Deployment"]
    assert world.session.status == "done"


def test_set_after_approval_voids_it_and_the_retry_waits_for_a_new_one(world, monkeypatch):
    real_apply = world.cluster.apply
    failures = iter([ClusterError("the API server did not answer (injected)")])

    def flaky(obj, **kw):
        # The namespace goes through apply too; the failure is meant for the deploy.
        deploying = not kw["dry_run"] and obj["kind"] != "Namespace"
        if deploying and (error := next(failures, None)) is not None:
            raise error
        return real_apply(obj, **kw)

    monkeypatch.setattr(world.cluster, "apply", flaky)
    world.comment("/idp apply", sender="mia")
    assert deploy_task(world).status == "failed" and applied(world) == []
    approved = deploy_task(world).digest

    world.comment("/idp set port=9090", number=world.pr_number(), on_pr=True)
    world.comment("/idp retry")

    assert applied(world) == []
    assert deploy_task(world).status == "waiting_approval"
    assert (
        f"🔓 Approval voided for `deploy_to_staging`: files changed since `@mia` approved "
        f"digest `{short(approved)}`"
    ) in world.todo()

    world.comment("/idp apply", sender="mia")

    assert [c[1] for c in applied(world)] == ["Service", "Deployment"]


def test_auto_deploy_on_merge_by_a_writer_without_an_approving_maintainer_waits(world):
    world.config("auto_deploy_on_merge: true\napproval_required: [create_repository]\n")

    world.deliver("pull_request", merged_payload(world, sender="alice"))

    assert world.cluster.writes == []
    assert (
        "Neither the merger nor an approving reviewer has **maintain** permission, which "
        "`auto_deploy_on_merge` needs: the staging deploy waits for `/idp apply`."
    ) in world.todo()
    assert world.session.approvals == []


def test_auto_deploy_on_merge_by_a_writer_deploys_behind_an_approving_maintainer(world):
    world.config("auto_deploy_on_merge: true\napproval_required: [create_repository]\n")
    world.github.add_review(world.pr_number(), "bob", state="approved")  # read: not enough
    world.github.add_review(world.pr_number(), "mia", state="approved")

    world.deliver("pull_request", merged_payload(world, sender="alice"))

    assert [c[1] for c in applied(world)] == ["Service", "Deployment"]
    assert "Deploying to staging (`auto_deploy_on_merge`, approved by mia)." in world.todo()
    assert {a.by for a in world.session.approvals} == {"mia"}


def test_a_maintainers_approval_withdrawn_by_a_change_request_does_not_count(world):
    world.config("auto_deploy_on_merge: true\napproval_required: [create_repository]\n")
    world.github.add_review(world.pr_number(), "mia", state="approved")
    world.github.add_review(world.pr_number(), "mia", state="changes_requested")

    world.deliver("pull_request", merged_payload(world, sender="alice"))

    assert world.cluster.writes == []


def test_the_stand_in_lists_a_pull_requests_reviews_oldest_first(world):
    """https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request: "The list
    of reviews returns in chronological order"; an unknown pull request is a 404."""
    import asyncio

    from app.github.forge import RepoRef
    from app.github.github_forge import GitHubForge
    from tests import github_api as gh

    for login, state in [("mia", "approved"), ("alice", "commented"), ("root", "approved")]:
        world.github.add_review(world.pr_number(), login, state=state)
    forge = GitHubForge(world.settings, world.connection)
    repo = RepoRef(gh.OWNER, gh.NAME, gh.INSTALLATION_ID)

    reviews = asyncio.run(forge.list_reviews(repo, world.pr_number()))

    assert [(r.author, r.state) for r in reviews] == [
        ("mia", "approved"),
        ("alice", "commented"),
        ("root", "approved"),
    ]
    with pytest.raises(Exception, match="404"):
        asyncio.run(forge.list_reviews(repo, 999))
