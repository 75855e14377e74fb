"""GitHub faults in the middle of a workflow (tests/test_github_forge.py covers one call at a
time): 502s, secondary rate limits and timeouts are retried with backoff and the run
finishes with one pull request; when the retries run out, the todo shows the failed step and
why, and `/idp retry` resumes it and finishes with one pull request."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.job_world import World

CREATE = "/idp create-service payments-api --lang go --team checkout"
SECONDARY = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}
BAD_GATEWAY = httpx.Response(502, json={"message": "Server Error"})


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch)
    # Backoff as configured in production (1 s, doubling); the retry_waits are recorded, not slept.
    world.settings = world.settings.model_copy(update={"github_retry_base_delay": 1.0})
    return world


def _posts(world: World, suffix: str) -> int:
    return sum(1 for m, p in world.github.writes() if m == "POST" and p.endswith(suffix))


def test_a_few_502s_on_the_way_are_retried_with_backoff_and_the_run_finishes(world, retry_waits):
    world.github.fail("POST", r"/git/trees$", BAD_GATEWAY, BAD_GATEWAY)
    world.github.fail("POST", r"/pulls$", BAD_GATEWAY)

    assert world.comment(CREATE) == {"create-service": "waiting"}

    assert retry_waits == [1.0, 2.0, 1.0]  # doubling per call, from the base delay
    assert len(world.github.pulls) == 1 and len(world.commits_on(world.pull()["branch"])) == 1
    assert "❌" not in world.todo()


def test_a_secondary_rate_limit_is_waited_out_as_long_as_github_asks(world, retry_waits):
    limited = httpx.Response(403, json=SECONDARY, headers={"Retry-After": "7"})
    world.github.fail("POST", r"/issues/7/comments$", limited)
    world.github.fail("POST", r"/git/commits$", limited)

    assert world.comment(CREATE) == {"create-service": "waiting"}

    assert retry_waits == [7.0, 7.0]
    assert len(world.todo_comments()) == 1
    assert len(world.github.pulls) == 1 and len(world.commits_on(world.pull()["branch"])) == 1


def test_a_pull_request_github_keeps_failing_shows_the_step_and_why_then_retry_finishes_it(
    world, retry_waits
):
    world.github.fail("POST", r"/pulls$", *[BAD_GATEWAY] * 6)  # the first try and 5 retries

    assert world.comment(CREATE) == {"create-service": "failed"}

    assert retry_waits == [1.0, 2.0, 4.0, 8.0, 16.0]
    todo = world.todo()
    assert "❌ Open the pull request" in todo
    assert "GitHub kept failing on opening the pull request" in todo
    assert "(502) after 6 tries. Run `/idp retry` later." in todo
    assert world.github.pulls == {}
    assert world.session.status == "failed"

    assert world.comment("/idp retry") == {"retry": "waiting"}

    assert len(world.github.pulls) == 1
    assert world.session.pr_number == world.pr_number()
    # The files were committed before the pull request failed; the retry reused that commit.
    assert _posts(world, "/git/commits") == 1 and _posts(world, "/git/refs") == 1
    assert "❌" not in world.todo() and f"#{world.pr_number()}" in world.todo()
    assert len(world.todo_comments()) == 1 and _posts(world, "/issues/7/comments") == 1


def test_a_rate_limit_longer_than_a_worker_should_wait_fails_the_step_saying_how_long(
    world, retry_waits
):
    world.github.fail(
        "POST",
        r"/git/trees$",
        httpx.Response(403, json=SECONDARY, headers={"Retry-After": "3600"}),
    )

    assert world.comment(CREATE) == {"create-service": "failed"}

    assert retry_waits == []  # not waited out inside a worker
    todo = world.todo()
    assert "❌ Open the pull request" in todo
    assert "GitHub's rate limit stopped committing to branch" in todo
    assert "it asks to wait 3600 s. Run `/idp retry` later." in todo

    assert world.comment("/idp retry") == {"retry": "waiting"}
    assert len(world.github.pulls) == 1 and _posts(world, "/git/commits") == 1


def _answers_then_times_out(world: World, handler_name: str, **params: str):
    """A hook: GitHub carries out the request, but its answer never reaches the App."""

    def hook(request: httpx.Request) -> httpx.Response:
        getattr(world.github, handler_name)(request, json.loads(request.content), **params)
        raise httpx.ReadTimeout("GitHub took too long to answer", request=request)

    return hook


def test_a_pull_request_call_that_timed_out_after_github_opened_it_yields_one_pull_request(
    world, retry_waits
):
    world.github.fail("POST", r"/pulls$", _answers_then_times_out(world, "_create_pull"))

    assert world.comment(CREATE) == {"create-service": "waiting"}

    assert retry_waits == [1.0]
    assert len(world.github.pulls) == 1 and world.session.pr_number == world.pr_number()
    assert "❌" not in world.todo()


def test_timeouts_on_reads_are_retried_and_the_run_finishes(world, retry_waits):
    world.github.fail("GET", r"/git/ref/heads/", httpx.ReadTimeout("slow"))
    world.github.fail("GET", r"/collaborators/alice/permission$", httpx.ConnectTimeout("slow"))

    assert world.comment(CREATE) == {"create-service": "waiting"}

    assert retry_waits == [1.0, 1.0]
    assert len(world.github.pulls) == 1


def test_a_todo_comment_call_that_timed_out_after_github_posted_it_leaves_one_comment(
    world, retry_waits
):
    world.github.fail(
        "POST",
        r"/issues/7/comments$",
        _answers_then_times_out(world, "_create_comment", number="7"),
    )

    assert world.comment(CREATE) == {"create-service": "waiting"}

    assert len(world.todo_comments()) == 1
    assert "❌" not in world.todo() and len(world.github.pulls) == 1
