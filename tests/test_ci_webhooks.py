"""`workflow_run` and `check_suite` deliveries at the receiver: a failure on the App's pull
request is accepted, deduped and routed to the internal verb `ci` with what failed; the
rest is ignored with a reason, and no GitHub call is made on the way.

Payloads as GitHub sends them (https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_run,
#check_suite), built by tests/fake_github_actions.py from the FakeGitHub's branches.
"""

from __future__ import annotations

import pytest
from rq import Queue
from rq.job import Job
from starlette.testclient import TestClient

from app.web import create_app
from app.webhooks import Ignored, route
from jobs.queue import job_id_for
from tests import github_api as gh
from tests.test_web import deliver

BRANCH = "idp/acme-payments-7"
PR = 12


@pytest.fixture
def github(no_unmocked_http) -> gh.FakeGitHub:
    github = gh.FakeGitHub(no_unmocked_http)
    github.push(BRANCH, {"services/payments-api/README.md": "# payments-api\n"}, "Add service")
    github.pulls[PR] = {
        "branch": BRANCH,
        "title": "Add service payments-api",
        "body": "",
        "base": "main",
        "draft": False,
        "state": "open",
    }
    return github


@pytest.fixture
def client(settings, redis_conn):
    return TestClient(create_app(settings, connection=redis_conn))


def failed_run(github: gh.FakeGitHub, branch: str = BRANCH) -> dict:
    steps = [("Validate manifests", "failure")]
    return github.fail_run(branch, "ci", [("validate", "failure", steps, "error\n")])


def test_a_failed_run_on_the_apps_branch_is_routed_to_ci_with_what_failed(github):
    run = failed_run(github)

    trigger = route("workflow_run", "d-1", github.workflow_run_completed(run))

    assert not isinstance(trigger, Ignored), trigger.reason
    assert [c.verb for c in trigger.commands] == ["ci"]
    assert (trigger.number, trigger.is_pull_request, trigger.sender) == (
        PR,
        True,
        gh.APP_BOT,  # the App's push started the run: a bot sender still counts here
    )
    ci = trigger.ci
    assert ci is not None and ci.kind == "workflow_run"
    assert (ci.run_id, ci.run_attempt, ci.head_sha, ci.head_branch) == (
        run["id"],
        1,
        github.refs[BRANCH],
        BRANCH,
    )
    assert ci.html_url == f"https://github.com/acme/payments/actions/runs/{run['id']}"
    assert ci.key() == f"ci:run:{run['id']}:1"


def test_another_apps_failed_check_suite_is_routed_and_github_actions_own_is_not(github):
    other = route("check_suite", "d-2", github.check_suite_completed(BRANCH, "circleci-checks"))
    actions = route("check_suite", "d-3", github.check_suite_completed(BRANCH, "github-actions"))

    assert not isinstance(other, Ignored) and other.ci is not None
    assert (other.ci.kind, other.ci.app_slug, other.number) == (
        "check_suite",
        "circleci-checks",
        PR,
    )
    assert isinstance(actions, Ignored)
    assert actions.reason == "GitHub Actions' check suite: its workflow_run reports it"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda p: p["workflow_run"].update(conclusion="success"),
            "workflow_run concluded success",
        ),
        (lambda p: p["workflow_run"].update(conclusion="cancelled"), "concluded cancelled"),
        (lambda p: p["workflow_run"].update(head_branch="main"), "not a branch of the App"),
        (lambda p: p["workflow_run"].update(pull_requests=[]), "names no pull request"),
        (lambda p: p.pop("workflow_run"), "payload has no usable workflow_run"),
        (lambda p: p.update(action="requested"), "workflow_run.requested is not handled"),
    ],
)
def test_what_is_not_a_failure_on_the_apps_pull_request_is_ignored(github, change, reason):
    payload = github.workflow_run_completed(failed_run(github))
    change(payload)

    routed = route("workflow_run", "d-4", payload)

    assert isinstance(routed, Ignored) and reason in routed.reason


def test_a_forks_run_has_no_pull_requests_and_is_ignored(github):
    payload = github.workflow_run_completed(failed_run(github), fork=True)

    routed = route("workflow_run", "d-5", payload)

    assert isinstance(routed, Ignored)
    assert routed.reason == "workflow_run names no pull request of this repository"


def test_the_receiver_queues_a_failed_run_once_and_makes_no_github_call(
    github, client, settings, redis_conn, no_unmocked_http
):
    payload = github.workflow_run_completed(failed_run(github))
    calls = len(no_unmocked_http.calls)

    first = deliver(client, "workflow_run", payload, delivery_id="run-1")
    again = deliver(client, "workflow_run", payload, delivery_id="run-1")

    assert first.status_code == 202
    assert first.json() == {
        "status": "queued",
        "reason": "workflow_run.completed",
        "job_id": job_id_for("run-1"),
    }
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert Queue(settings.queue_name, connection=redis_conn).count == 1
    trigger = Job.fetch(job_id_for("run-1"), connection=redis_conn).kwargs["trigger"]
    assert trigger["ci"]["run_id"] == payload["workflow_run"]["id"]
    assert [c["verb"] for c in trigger["commands"]] == ["ci"]
    assert len(no_unmocked_http.calls) == calls  # nothing reached GitHub


def test_the_receiver_ignores_a_green_check_suite(github, client, settings, redis_conn):
    payload = github.check_suite_completed(BRANCH, "circleci-checks", conclusion="success")

    response = deliver(client, "check_suite", payload, delivery_id="suite-1")

    assert response.status_code == 202
    assert response.json() == {
        "status": "ignored",
        "reason": "check_suite concluded success: nothing to report",
    }
    assert Queue(settings.queue_name, connection=redis_conn).count == 0


def test_every_event_the_router_handles_is_in_the_apps_manifest():
    """GitHub sends only the events the App subscribes to (github-app.yml `default_events`)."""
    from pathlib import Path

    import yaml

    from app.webhooks import KNOWN_EVENTS

    manifest = yaml.safe_load((Path(__file__).parents[1] / "github-app.yml").read_text())

    assert {"workflow_run", "check_suite"} <= KNOWN_EVENTS
    assert KNOWN_EVENTS - {"ping"} <= set(manifest["default_events"])
    assert manifest["default_permissions"]["actions"] == "write"
