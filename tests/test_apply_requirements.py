"""Apply requirements (`apply_requirements` in `.github/idp-copilot.yml`), seen from GitHub:
a refused `/idp apply` names each unmet requirement in one reply and approves nothing; once
the pull request meets them the same command runs."""

from __future__ import annotations

import pytest

from tests.job_world import World

CREATE = "/idp create-service payments-api --lang go --team checkout"


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch)
    world.comment(CREATE)
    return world


def apply(world: World, sender: str = "mia") -> dict[str, str]:
    return world.comment("/idp apply", sender=sender, number=world.pr_number(), on_pr=True)


def refusal(world: World) -> str:
    (reply,) = [r for r in world.replies(world.pr_number()) if "did not run" in r]
    return reply


def head(world: World) -> str:
    return world.github.refs[world.pull()["branch"]]


def assert_refused(world: World, outcome: dict[str, str]) -> None:
    assert outcome == {"apply": "refused"}
    assert world.cluster.writes == []
    assert world.session.approvals == []


def test_the_default_requires_mergeable_and_github_still_computing_it_refuses(world):
    world.github.computing(world.pr_number())

    assert_refused(world, apply(world))

    reply = refusal(world)
    assert "`apply_requirements`" in reply
    assert "- **mergeable**: GitHub is still computing whether pull request #" in reply
    assert "try again" in reply
    assert apply(world) == {"apply": "done"}  # GitHub has computed it by now
    assert world.cluster.writes


@pytest.mark.parametrize(
    ("mergeable", "state", "said"),
    [
        (False, "dirty", "has merge conflicts with `main`"),
        (True, "blocked", "the protection of `main` blocks merging"),
        (True, "draft", "is a draft; mark it ready for review"),
    ],
)
def test_a_pull_request_that_cannot_merge_refuses_apply_until_it_can(world, mergeable, state, said):
    world.github.set_mergeable(world.pr_number(), mergeable, state)

    assert_refused(world, apply(world))
    assert said in refusal(world)

    world.github.set_mergeable(world.pr_number(), True, "clean")
    assert apply(world) == {"apply": "done"}


def test_approved_needs_an_approving_review_by_someone_who_may_apply(world):
    world.config("apply_requirements: [approved]\n")
    number = world.pr_number()

    assert_refused(world, apply(world))
    assert "has no approving review from someone with **maintain** permission" in refusal(world)

    world.github.add_review(number, "alice", state="approved")  # a writer: not enough
    assert_refused(world, apply(world))
    assert "approved, but by nobody with **maintain** permission" in (world.replies(number)[-1])

    world.github.add_review(number, "mia", state="approved")
    assert apply(world) == {"apply": "done"}


def test_a_reviewers_latest_review_counts_and_a_dismissed_approval_does_not(world):
    world.config("apply_requirements: [approved]\n")
    number = world.pr_number()
    world.github.add_review(number, "mia", state="approved")
    world.github.add_review(number, "mia", state="changes_requested")
    world.github.add_review(number, "root", state="approved")
    world.github.add_review(number, "root", state="dismissed")
    world.github.add_review(number, "mia", state="commented")  # does not undo a verdict

    assert_refused(world, apply(world))

    world.github.add_review(number, "root", state="approved")
    world.github.add_review(number, "root", state="commented")
    assert apply(world) == {"apply": "done"}


def test_checks_without_protection_need_every_check_on_the_head_commit_green(world):
    world.config("apply_requirements: [checks]\n")
    sha = head(world)
    world.github.check_runs.clear()  # not even the App's own validation check yet

    assert_refused(world, apply(world))
    assert f"no check has reported on commit `{sha[:12]}`" in refusal(world)

    world.github.add_check(sha, "build", conclusion="failure")
    world.github.add_check(sha, "lint", status="in_progress", conclusion=None)
    world.github.add_status(sha, "ci/deploy-preview", "pending")
    assert_refused(world, apply(world))
    reply = world.replies(world.pr_number())[-1]
    assert "failed: `build`" in reply
    assert "not finished: `ci/deploy-preview`, `lint`" in reply

    world.github.add_check(sha, "build")  # re-run: the newest run of a name counts
    world.github.add_check(sha, "lint")
    world.github.add_status(sha, "ci/deploy-preview", "success")
    assert apply(world) == {"apply": "done"}


def test_checks_with_readable_protection_count_only_the_required_ones(
    settings, redis_conn, no_unmocked_http, monkeypatch
):
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch)
    world.github.granted["administration"] = "read"  # tokens carry the grants of their moment
    world.comment(CREATE)
    world.config("apply_requirements: [checks]\n")
    world.github.require_checks("main", ["build"])
    sha = head(world)
    world.github.add_check(sha, "flaky-e2e", conclusion="failure")  # not required

    assert_refused(world, apply(world))
    assert "required checks on commit" in refusal(world)
    assert "not reported: `build`" in refusal(world)

    world.github.add_check(sha, "build")
    assert apply(world) == {"apply": "done"}


def test_every_unmet_requirement_is_named_in_one_reply(world):
    world.config("apply_requirements: [approved, mergeable, checks]\n")
    world.github.set_mergeable(world.pr_number(), False, "dirty")
    world.github.add_check(head(world), "build", conclusion="failure")

    assert_refused(world, apply(world))

    (reply,) = [r for r in world.replies(world.pr_number())]
    assert [line[:16] for line in reply.splitlines() if line.startswith("- **")] == [
        "- **approved**: ",
        "- **mergeable**:",
        "- **checks**: ch",
    ]


def test_an_empty_list_runs_on_approval_alone(world):
    world.config("apply_requirements: []\n")
    world.github.set_mergeable(world.pr_number(), False, "dirty")

    assert apply(world) == {"apply": "done"}


def test_deploy_staging_meets_the_same_requirements(world):
    world.github.set_mergeable(world.pr_number(), False, "dirty")

    outcome = world.comment("/idp deploy staging", sender="mia")

    assert outcome == {"deploy": "refused"}
    assert world.cluster.writes == []
    assert "`/idp deploy staging` did not run" in world.replies()[-1]


def test_a_bad_requirement_gets_the_config_error_comment_and_the_default_holds(world):
    world.config("apply_requirements: [approved, green]\n")
    world.github.set_mergeable(world.pr_number(), False, "dirty")

    assert_refused(world, apply(world))

    (error,) = [r for r in world.replies(world.pr_number()) if "is not valid" in r]
    assert "`apply_requirements[1]: 'green' is not one of approved, mergeable, checks`" in error
    assert "- **mergeable**:" in refusal(world)  # the default, [mergeable]
