"""CI on the App's pull request, seen from GitHub: a workflow run fails on the App's head
commit; the todo names the failing workflow, job and step with links; without a model
`/idp retry` re-runs the failed jobs; with a model the App reads the job's log (through the
302 download redirect) and pushes one validated fix commit, at most two for a failing line
of commits, then stops and says what it tried. It never edits a file a person changed.

`GitHubForge` against `FakeGitHub` (respx, GitHub-shaped bodies, tests/fake_github_actions.py),
the deliveries as GitHub sends them, and a scripted model on the OpenAI wire.
"""

from __future__ import annotations

import pytest

from tests import github_api as gh
from tests.job_world import World
from tests.llm_fixtures import use_scripted_llm
from tests.test_llm_full_run import use_provider

CREATE = "/idp create-service payments-api --lang python --team checkout"
DEPLOYMENT = "services/payments-api/k8s/base/deployment.yaml"
STEPS = [("Set up job", "success"), ("Validate manifests", "failure"), ("Post", "skipped")]
LOG = (
    "2026-01-01T00:00:01Z ##[group]Validate manifests\n"
    + "x" * 70_000  # older output, beyond the 64 KB the App reads
    + "\nerror: deployment.yaml: metadata.annotations.note: 'v1' is not allowed\n"
    "token used: ghp_abcdefghijklmnopqrstuvwxyz0123456789\n"
    "##[error]Process completed with exit code 1.\n"
)


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch)
    world.comment(CREATE)
    assert world.session.pr_number is not None
    return world


def fail(world: World, log: str = LOG) -> dict:
    """The `ci` workflow fails on the branch's head: job `validate` at its second step."""
    branch = world.session.branch or ""
    return world.github.fail_run(
        branch,
        "ci",
        [("build", "success", [("Build", "success")], "ok\n"), ("validate", "failure", STEPS, log)],
    )


def deliver_run(world: World, run: dict) -> dict[str, str]:
    return world.deliver("workflow_run", world.github.workflow_run_completed(run))


def fixing(world: World, monkeypatch, router, *turns) -> object:
    use_provider(world, "openai")
    return use_scripted_llm(monkeypatch, router, "openai", list(turns))


def replace(old: str, new: str) -> list:
    return [("replace_in_file", {"path": DEPLOYMENT, "old": old, "new": new})]


# -- without a model --------------------------------------------------------------------------


def test_a_failed_run_on_the_apps_head_is_shown_with_workflow_job_and_step_links(world):
    run = fail(world)
    commits = world.commits_on(world.session.branch)

    result = deliver_run(world, run)

    assert result == {"ci": "reported"}
    todo = world.todo()
    (job_id,) = [j for j in run["jobs"] if world.github.jobs[j]["conclusion"] == "failure"]
    assert "### CI" in todo
    assert (
        f"[ci](https://github.com/acme/payments/actions/runs/{run['id']}) › "
        f"[validate](https://github.com/acme/payments/actions/runs/{run['id']}/job/{job_id}) › "
        "step **Validate manifests**"
    ) in todo
    assert "build" not in todo.split("### CI")[1]  # the job that passed is not named
    (reply,) = world.replies(world.pr_number())
    assert "`/idp retry` re-runs the failed jobs" in reply
    # Nothing was pushed, no log was read, nothing re-ran.
    assert world.commits_on(world.session.branch) == commits
    assert world.github.log_downloads == [] and world.github.reruns == []


def test_idp_retry_without_failed_steps_re_runs_the_failed_jobs(world):
    run = fail(world)
    deliver_run(world, run)

    result = world.comment("/idp retry", on_pr=True, number=world.pr_number())

    assert result == {"retry": "retried"}
    assert world.github.reruns == [run["id"]]
    assert ("POST", f"/repos/acme/payments/actions/runs/{run['id']}/rerun-failed-jobs") in (
        world.github.writes()
    )
    assert any("Re-running the failed jobs of [ci](" in r for r in world.replies(world.pr_number()))


def test_idp_retry_names_the_missing_actions_permission(world):
    deliver_run(world, fail(world))
    # The installation's owner took the permission away; the next token has no `actions`.
    world.github.granted.pop("actions")
    world.connection.delete(*world.connection.keys(world.settings.key("github", "auth") + "*"))

    result = world.comment("/idp retry", on_pr=True, number=world.pr_number())

    assert result == {"retry": "failed"}
    assert world.github.reruns == []
    assert any("**Actions: Read and write**" in r for r in world.replies(world.pr_number()))


def test_the_same_delivery_twice_or_a_run_on_another_commit_changes_nothing(world):
    run = fail(world)
    payload = world.github.workflow_run_completed(run)
    assert world.deliver("workflow_run", payload) == {"ci": "reported"}
    todo = world.todo()

    assert world.deliver("workflow_run", payload) == {"ci": "duplicate"}
    # A person pushes; a run on their commit is not the App's to report.
    branch = world.session.branch or ""
    world.github.push(branch, {"NOTES.md": "mine\n"}, "A note")
    assert deliver_run(world, fail(world)) == {"ci": "ignored"}
    assert world.todo() == todo
    assert len(world.replies(world.pr_number())) == 1


# -- with a model -----------------------------------------------------------------------------


def test_with_a_model_a_failed_run_is_fixed_in_one_validated_commit(
    world, monkeypatch, no_unmocked_http
):
    run = fail(world)
    before = world.commits_on(world.session.branch)
    wire = fixing(
        world,
        monkeypatch,
        no_unmocked_http,
        replace("note: 'v1'", "note: 'v2'"),
        "Changed the note to v2.",
    )

    result = deliver_run(world, run)

    assert result == {"ci": "fixed"}
    branch = world.session.branch or ""
    after = world.commits_on(branch)
    assert len(after) == len(before) + 1
    assert "note: 'v2'" in world.github.files(branch)[DEPLOYMENT]
    assert world.session.head_sha == after[0]
    # The model read the log's tail through the redirect, secrets redacted, as quoted data.
    (download,) = [r for r in world.github.log_downloads]
    assert download.headers["range"] == "bytes=-65536" and "authorization" not in download.headers
    sent = wire.requests[0]["messages"][-1]["content"]
    assert "'v1' is not allowed" in sent and "ghp_abcdefghij" not in sent
    assert "untrusted text from the CI log" in sent
    assert "x" * 70_000 not in sent
    assert "Validate manifests" in sent
    assert "🔧 Attempt 1:" in world.todo()
    assert any("I pushed a fix" in r for r in world.replies(world.pr_number()))


def test_a_fix_that_fails_validation_is_not_pushed(
    settings, redis_conn, no_unmocked_http, monkeypatch
):
    from tests.fakes import install_fake_validator

    world = World(settings, redis_conn, no_unmocked_http, monkeypatch)
    world.comment(CREATE)
    install_fake_validator(monkeypatch, bad_paths=(DEPLOYMENT,))
    run = fail(world)
    before = world.commits_on(world.session.branch)
    fixing(world, monkeypatch, no_unmocked_http, replace("note: 'v1'", "note: 'v2'"), "Fixed.")

    assert deliver_run(world, run) == {"ci": "unfixed"}

    assert world.commits_on(world.session.branch) == before
    assert any("did not pass validation" in r for r in world.replies(world.pr_number()))


def test_after_two_fix_attempts_a_third_failure_is_reported_and_not_retried(
    world, monkeypatch, no_unmocked_http
):
    wire = fixing(
        world,
        monkeypatch,
        no_unmocked_http,
        replace("note: 'v1'", "note: 'v2'"),
        "Attempt one.",
        replace("note: 'v2'", "note: 'v3'"),
        "Attempt two.",
    )
    branch = world.session.branch or ""
    start = len(world.commits_on(branch))

    assert deliver_run(world, fail(world)) == {"ci": "fixed"}
    assert deliver_run(world, fail(world)) == {"ci": "fixed"}
    assert deliver_run(world, fail(world)) == {"ci": "stopped"}

    assert len(wire.requests) == 4  # no model call for the third failure
    assert len(world.commits_on(branch)) == start + 2
    last = world.replies(world.pr_number())[-1]
    assert "I stop here after 2 fix attempts" in last
    assert "Attempt 1:" in last and "Attempt 2:" in last
    assert "no more fixes" in world.todo()
    assert world.github.reruns == []


def test_the_fix_never_edits_a_file_a_person_changed(world, monkeypatch, no_unmocked_http):
    branch = world.session.branch or ""
    mine = world.github.files(branch)[DEPLOYMENT].replace("note: 'v1'", "note: 'mine'")
    world.github.push(branch, {DEPLOYMENT: mine}, "My note")
    world.store.save(world.session.model_copy(update={"head_sha": world.github.refs[branch]}))
    before = world.commits_on(branch)
    wire = fixing(
        world,
        monkeypatch,
        no_unmocked_http,
        replace("note: 'mine'", "note: 'v2'"),
        "Could not edit it.",
    )

    assert deliver_run(world, fail(world)) == {"ci": "unfixed"}

    assert world.commits_on(branch) == before
    assert world.github.files(branch)[DEPLOYMENT] == mine
    sent = wire.requests[0]["messages"][-1]["content"]
    assert f"may NOT edit them (say so if the fix belongs there): `{DEPLOYMENT}`" in sent
    answered = wire.requests[1]["messages"][-1]["content"]
    assert "is not a file of this pull request" in answered


def test_ci_fix_is_off_when_the_repo_config_says_so(world, monkeypatch, no_unmocked_http):
    world.config("ci:\n  fix: false\n")
    fixing(world, monkeypatch, no_unmocked_http)  # any model call fails the test

    assert deliver_run(world, fail(world)) == {"ci": "reported"}


# -- check suites of other apps -----------------------------------------------------------------


def test_another_apps_failed_check_suite_is_reported_with_a_link_to_the_checks(world):
    branch = world.session.branch or ""
    payload = world.github.check_suite_completed(branch, "circleci-checks")

    assert world.deliver("check_suite", payload) == {"ci": "reported"}

    checks = f"https://github.com/acme/payments/pull/{world.pr_number()}/checks"
    assert f"❌ [circleci-checks checks]({checks}) failed" in world.todo()
    assert world.github.log_downloads == []


def test_the_apps_own_check_suite_is_left_alone(world):
    branch = world.session.branch or ""
    own = world.github.check_suite_completed(branch, "idp-copilot", app_id=int(gh.APP_ID))

    assert world.deliver("check_suite", own) == {"ci": "ignored"}
    assert "### CI" not in world.todo()


def test_a_run_on_a_merged_pull_request_is_not_reported(world):
    run = fail(world)
    world.store.save(world.session.model_copy(update={"merged_at": 1.0}))

    assert deliver_run(world, run) == {"ci": "ignored"}
    assert "### CI" not in world.todo()
