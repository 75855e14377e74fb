"""GitHub etiquette of the worker, seen from GitHub: who may run what, the repo's config file,
the todo comment's lifecycle, open questions, the pull request (labels, draft, check run),
re-plans that commit only what changed, and a write budget for a whole workflow.

`GitHubForge` talks to `FakeGitHub` (respx, GitHub-shaped bodies) throughout."""

from __future__ import annotations

import uuid

import pytest

from app.audit import AuditLog
from app.domain.plan_render import CHECK_NAME
from app.domain.service import ServiceRequest
from app.domain.todo import marker
from app.events import EventBus
from app.grammar.commands import Command, Trigger
from tests.job_world import ISSUE, SESSION, World

CREATE = "/idp create-service payments-api --lang python --team checkout"


def validation_checks(world: World) -> list[dict]:
    """The validation check runs (the cluster plan's are tests/test_plan_flow.py's)."""
    return [c for c in world.github.check_runs if c["name"] != CHECK_NAME]


def trigger(*commands: Command, sender: str = "alice", **fields: object) -> Trigger:
    """A trigger as the receiver or the operator API hands it to a job, on issue #7."""
    values = {"delivery_id": str(uuid.uuid4()), "event": "issue_comment", **fields}
    return Trigger(
        repo="acme/payments",
        installation_id=4242,
        number=ISSUE,
        sender=sender,
        commands=list(commands),
        **values,  # type: ignore[arg-type]
    )


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    return World(settings, redis_conn, no_unmocked_http, monkeypatch)


# -- authorization ------------------------------------------------------------------------


def test_a_read_only_user_gets_one_polite_refusal_and_nothing_else(world):
    first = world.comment(CREATE, sender="bob")
    second = world.comment(CREATE, sender="bob")

    assert first == second == {"create-service": "refused"}
    (refusal,) = world.replies()
    assert "`/idp create-service` needs **write** permission" in refusal
    assert "you have **read**" in refusal
    assert "@bob" not in refusal  # named, never pinged
    assert world.todo_comments() == [] and world.github.pulls == {}
    # One reply and one reaction per comment at most: no 👀 for what will not run.
    assert world.reactions() == ["confused", "confused"]


def test_the_config_file_can_make_a_command_stricter_and_the_refusal_says_so(world):
    world.config("permissions:\n  create-service: admin\n")

    world.comment(CREATE, sender="alice")

    (refusal,) = world.replies()
    assert "needs **admin** permission" in refusal
    assert "`.github/idp-copilot.yml` asks for it" in refusal


def test_anyone_may_ask_for_status_and_help_shows_their_permissions(world):
    world.comment("/idp status", sender="bob")
    world.comment("/idp help", sender="bob")

    status, help_text = world.replies()
    assert "No IDP Copilot session here yet" in status
    assert "Your permission here: **read**" in help_text
    may_run = help_text.split("You may run:")[1].split("\n")[0]
    assert "`status`" in may_run and "`create-service`" not in may_run


# -- the repository's config file ---------------------------------------------------------


def test_an_invalid_config_is_named_once_and_the_run_goes_on_with_the_defaults(world):
    world.config("labels: [idp-copilot]\ndefaults:\n  langauge: go\n")

    world.comment(CREATE)
    world.comment("/idp status")

    config_comments = [r for r in world.replies() if "idp-copilot.yml` is not valid" in r]
    assert len(config_comments) == 1
    assert "defaults.langauge" in config_comments[0] and "line 3" in config_comments[0]
    assert "did you mean `language`?" in config_comments[0]
    assert world.session.status == "waiting"  # done but for the approval-gated steps
    assert world.pull()["title"] == "Add service payments-api"
    assert "services/payments-api/k8s/base/deployment.yaml" in world.github.files(
        world.session.branch
    )


def test_the_config_shapes_the_pull_request_path_labels_and_draft(world):
    world.config(
        "manifests_path: apps/{name}\nlabels: [platform, new-service]\ndraft_pull_requests: true\n"
    )

    world.comment(CREATE)

    pull = world.pull()
    assert pull["draft"] is True
    assert world.github.labels[world.pr_number()] == ["new-service", "platform"]
    assert "apps/payments-api/k8s/base/deployment.yaml" in world.github.files(pull["branch"])


def test_repo_defaults_fill_in_what_the_request_leaves_out(world):
    world.config("defaults:\n  language: go\n  team: payments\n")

    world.comment("/idp create-service payments-api")

    request = world.session.request
    assert (request.language, request.team) == ("go", "payments")
    assert "Open questions" not in world.todo()


# -- the todo comment and open questions --------------------------------------------------


def test_a_missing_language_is_asked_and_the_answer_resumes_the_same_session(world):
    world.comment("/idp create-service payments-api --team checkout")

    asking = world.todo()
    assert "### Open questions" in asking and "/idp answer go" in asking
    assert world.session.status == "waiting" and world.github.pulls == {}
    comment_id = world.session.comment_id

    world.comment("/idp answer go", sender="alice")

    (todo,) = world.todo_comments()
    assert world.session.comment_id == comment_id
    assert "Open questions" not in todo["body"]
    assert "- [x] Open the pull request" in todo["body"]
    assert world.session.request.language == "go"
    assert world.pull()["title"] == "Add service payments-api"


def test_the_requester_may_answer_without_write_permission_but_others_may_not(world):

    # bob (read on GitHub) started the session from the operator API, which granted it.
    service = ServiceRequest(name="payments-api")
    world.run(
        trigger(
            Command(verb="create-service", service=service),
            sender="bob",
            event="api",
            authorized_permission="admin",
        )
    )

    assert world.comment("/idp answer node", sender="carol") == {"answer": "refused"}
    assert world.comment("/idp answer node", sender="bob") == {"answer": "waiting"}
    assert world.session.request.language == "node"
    assert world.session.pr_url is not None


def test_the_todo_comment_is_created_once_edited_and_links_the_pull_request(world):
    world.comment(CREATE)

    (todo,) = world.todo_comments()
    assert todo["body"].startswith(marker(SESSION))
    assert f"[#{world.pr_number()}]({world.session.pr_url})" in todo["body"]
    posts = [w for w in world.writes(f"/issues/{ISSUE}/comments") if w[0] == "POST"]
    assert len(posts) == 1
    assert world.reactions() == ["eyes", "rocket"]


def test_the_same_command_again_writes_nothing_but_its_reactions(world):
    world.comment(CREATE)
    before = len(world.writes())

    world.comment(CREATE)

    assert [p for _, p in world.writes()[before:]] == [
        p for _, p in world.writes()[before:] if p.endswith("/reactions")
    ]
    assert len(world.writes()) - before == 2


def test_a_locked_issue_gets_nothing_from_the_worker(world):
    locked = trigger(Command(verb="status"), comment_id=99, locked=True)

    assert world.run(locked) == {"ignored": "locked"}
    assert world.writes() == []


# -- the pull request ---------------------------------------------------------------------


def test_the_pull_request_carries_summary_validation_and_a_link_back_and_a_check_run(world):
    world.comment(CREATE)

    pull = world.pull()
    body = pull["body"]
    assert "### Summary" in body and "Deployment and Service for payments-api" in body
    assert "### Validation" in body and "| ✅ | all files valid |" in body
    assert body.rstrip().endswith(f"Closes #{ISSUE}")
    (check,) = validation_checks(world)
    assert check["head_sha"] == world.github.refs[pull["branch"]]
    assert check["conclusion"] == "success"
    assert "all files valid" in check["output"]["summary"]


def test_a_replan_on_the_pull_request_that_changes_nothing_makes_no_commit(world):
    world.comment(CREATE)
    branch = world.session.branch
    commits = world.commits_on(branch)

    outcome = world.comment("/idp plan", number=world.pr_number(), on_pr=True)

    assert outcome == {"plan": "waiting"}
    assert world.commits_on(branch) == commits
    assert len(validation_checks(world)) == 1
    assert world.generators.calls["generate_k8s_manifests"] == 2  # it did re-render


def test_a_replan_that_changes_a_file_pushes_exactly_one_commit_with_that_change(world):
    world.comment(CREATE)
    branch = world.session.branch
    before = world.github.files(branch)
    world.generators.note = "v2"

    world.comment("/idp plan", number=world.pr_number(), on_pr=True)

    after = world.github.files(branch)
    assert len(world.commits_on(branch)) == 2
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed == {"services/payments-api/k8s/base/deployment.yaml"}
    assert "note: 'v2'" in after["services/payments-api/k8s/base/deployment.yaml"]
    assert len(validation_checks(world)) == 2  # the new head is checked too
    assert len(world.github.pulls) == 1


# -- budget, audit and events -------------------------------------------------------------


def test_one_create_service_workflow_stays_within_25_github_writes(world):
    world.comment(CREATE)

    assert world.session.pr_url is not None
    assert len(world.writes()) <= 25


def test_the_real_tools_make_one_validated_commit_within_the_write_budget(
    settings, redis_conn, no_unmocked_http, monkeypatch
):
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch, real_tools=True)
    world.config("manifests_path: apps/{name}\n")

    world.comment(CREATE)

    branch = world.session.branch
    files = world.github.files(branch)
    assert "apps/payments-api/k8s/base/deployment.yaml" in files
    assert not any(path.startswith("services/") for path in files)
    assert len(world.commits_on(branch)) == 1
    (check,) = validation_checks(world)
    assert check["conclusion"] == "success"
    assert "| zizmor | 1 | ✅ pass |" in check["output"]["summary"]
    assert len(world.writes()) <= 25


def test_every_side_effect_of_a_workflow_is_in_the_audit_log_with_who_and_which_command(world):
    world.comment(CREATE)

    entries = list(AuditLog(world.connection, world.settings).entries())
    actions = {e["action"] for e in entries}
    assert {"comment", "branch", "commit", "pull_request", "check_run", "label"} <= actions
    assert all(e["actor"] == "alice" and e["session_id"] == SESSION for e in entries)
    assert {e["command"] for e in entries} == {"create-service"}
    commits = [e for e in entries if e["action"] == "commit"]
    assert [e["result"] for e in commits] == ["created"]


def test_progress_reaches_the_event_bus_for_the_operator_console(world):
    world.comment(CREATE)

    kinds = [e.kind for e in EventBus(world.connection, world.settings).history(SESSION)]
    assert "todo" in kinds and "tool_result" in kinds and "status" in kinds
