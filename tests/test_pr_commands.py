"""Approval and the life of the App's pull request, seen from GitHub and the cluster:
`/idp apply` by a maintainer runs the approval-gated tools for real (a writer is refused),
`/idp deploy staging`, and the merge, with and without auto-deploy."""

from __future__ import annotations

import pytest

from app.audit import AuditLog
from tests import payloads
from tests.job_world import World

CREATE = "/idp create-service payments-api --lang go --team checkout"
# One staging namespace per repository, by the operator's rule (tools/staging.py): the
# readable repository name and a hash of it, whatever `--team` says.
NAMESPACE = "acme-payments-bf264d5186-staging"


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch)
    world.comment(CREATE)
    return world


def merged_payload(
    world: World, *, merged: bool = True, sender: str = "mia", number: int | None = None
) -> dict:
    """`pull_request.closed` for the App's pull request (or pull request `number`), as
    GitHub sends it: by then the branch's files are on the default branch."""
    number = world.pr_number() if number is None else number
    pull = world.github.pulls[number]
    if merged:
        world.github.push("main", world.github.files(pull["branch"]), "Merge pull request")
    author = payloads.user(sender)
    return {
        "action": "closed",
        "number": number,
        "pull_request": {
            "id": 555,
            "number": number,
            "state": "closed",
            "locked": False,
            "title": pull["title"],
            "user": payloads.user("idp-copilot[bot]", "Bot"),
            "body": pull["body"],
            "merged": merged,
            "merged_at": "2024-05-03T10:00:00Z" if merged else None,
            "merged_by": author if merged else None,
            "head": {"ref": pull["branch"], "sha": world.github.refs[pull["branch"]]},
            "base": {"ref": "main", "sha": world.github.refs["main"]},
            "html_url": world.session.pr_url,
        },
        "repository": payloads.repository(),
        "sender": author,
        "installation": {"id": payloads.INSTALLATION_ID},
    }


def test_before_approval_nothing_reaches_the_cluster_and_the_todo_says_who_may_approve(world):
    assert world.cluster.writes == []
    assert "- [ ] 🔒 Deploy to staging — waiting for `/idp apply` from a maintainer" in (
        world.todo()
    )


def test_apply_by_a_maintainer_runs_the_gated_tools_for_real_in_order(world):
    outcome = world.comment("/idp apply", sender="mia", number=world.pr_number(), on_pr=True)

    assert outcome == {"apply": "done"}
    assert world.cluster.writes == [
        ("namespace", NAMESPACE, False),
        ("apply", "Service", "payments-api", NAMESPACE, False),
        ("apply", "Deployment", "payments-api", NAMESPACE, False),
    ]
    assert world.session.approved_by == "mia"
    assert "- [x] Deploy to staging" in world.todo()
    audit = [e for e in AuditLog(world.connection, world.settings).entries()]
    deploys = [e for e in audit if e["action"] in ("namespace", "deploy")]
    deploys = [e for e in deploys if e["result"] != "dry run"]  # the plan's, audited too
    assert {(e["actor"], e["command"], e["result"]) for e in deploys} == {
        ("mia", "apply", "applied")
    }


def test_apply_by_a_writer_is_refused_and_nothing_runs(world):
    outcome = world.comment("/idp apply", sender="alice", number=world.pr_number(), on_pr=True)

    assert outcome == {"apply": "refused"}
    assert world.cluster.writes == []
    (refusal,) = world.replies(world.pr_number())
    assert "`/idp apply` needs **maintain** permission" in refusal
    assert world.session.approved_by is None


def test_apply_twice_deploys_once(world):
    world.comment("/idp apply", sender="mia")
    calls = list(world.cluster.writes)

    world.comment("/idp apply", sender="mia")

    assert world.cluster.writes == calls
    assert "Nothing here is waiting for approval" in world.replies()[-1]


def test_the_staging_namespace_is_the_operators_not_the_repositorys(world):
    world.settings = world.settings.model_copy(
        update={"staging_namespaces": "acme/payments=payments-staging"}
    )
    world.config("staging:\n  namespace_prefix: shop-\n")

    # The todo showed the namespace before the operator's mapping: approving it approves
    # nothing that would run now.
    world.comment("/idp deploy staging", sender="root")

    assert world.cluster.writes == []
    todo = world.todo()
    assert (
        "🔓 Approval voided for `create_k8s_namespace`: arguments or target changed since `@root`"
        in todo
    )
    assert "🔒 `create_k8s_namespace` → namespace `payments-staging`" in todo

    world.comment("/idp deploy staging", sender="root")

    assert world.cluster.writes[0] == ("namespace", "payments-staging", False)
    assert {c[3] for c in world.cluster.writes[1:]} == {"payments-staging"}
    assert set(world.cluster.managers) == {"idp-copilot/acme/payments"}
    (reply,) = [r for r in world.replies() if "namespace_prefix" in r]
    assert "the staging namespace is the operator's setting now" in reply


def test_a_merge_is_recorded_and_the_deploy_keeps_waiting_without_auto_deploy(world):
    world.deliver("pull_request", merged_payload(world))

    assert world.session.merged_by == "mia" and world.session.merged_at is not None
    assert f"Pull request #{world.pr_number()} was merged by mia." in world.todo()
    assert world.cluster.writes == []


def test_auto_deploy_on_merge_still_waits_for_apply_while_the_config_gates_the_deploy(world):
    world.config("auto_deploy_on_merge: true\n")

    world.deliver("pull_request", merged_payload(world))

    assert world.cluster.writes == []
    assert "The staging deploy waits for `/idp apply` from a maintainer." in world.todo()


def test_auto_deploy_on_merge_deploys_when_the_config_lifts_the_gate(world):
    world.config("auto_deploy_on_merge: true\napproval_required: [create_repository]\n")

    world.deliver("pull_request", merged_payload(world))
    world.deliver("pull_request", merged_payload(world))  # redelivered: nothing twice

    assert [c[0] for c in world.cluster.writes] == ["namespace", "apply", "apply"]
    assert world.session.status == "done"
    assert "Deploying to staging (`auto_deploy_on_merge`)." in world.todo()


def test_a_pull_request_closed_without_merging_is_routed_to_release_its_locks(world):
    from app.webhooks import Ignored, route

    routed = route("pull_request", "d-1", merged_payload(world, merged=False))

    assert not isinstance(routed, Ignored)
    assert [c.verb for c in routed.commands] == ["closed"]
    assert world.run(routed) == {"closed": "done"}
    assert world.session.merged_at is None


def test_a_merged_pull_request_from_another_branch_is_not_ours(world):
    from app.webhooks import Ignored, route

    payload = merged_payload(world)
    payload["pull_request"]["head"]["ref"] = "feature/login"

    routed = route("pull_request", "d-2", payload)

    assert isinstance(routed, Ignored) and routed.reason == "not a pull request the App opened"


def test_set_on_the_pull_request_commits_the_new_value_on_its_branch(world):
    outcome = world.comment("/idp set port=9090", number=world.pr_number(), on_pr=True)

    assert outcome == {"set": "revised"}
    files = world.github.files(world.session.branch)
    assert "port: 9090" in files["services/payments-api/k8s/base/service.yaml"]
    assert "Done in" in world.replies(world.pr_number())[-1]
