"""Before a job's first write the App compares what the installation granted (the token
response's `permissions`) with what the command needs: a missing permission is one line in
the todo and nothing half-made. Whole jobs (webhook payload → route → job → `GitHubForge`)
against the GitHub stand-in, which enforces the same permissions GitHub does.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from app.github.forge import RepoRef
from app.github.local_forge import LocalForge
from app.github.permissions import APP_PERMISSIONS
from app.handling.preflight import NOTE_PREFIX
from tests.job_world import World
from tests.review_world import ReviewWorld

CREATE = "/idp create-service payments-api --lang python --team payments"
WORKFLOWS = "**Workflows: Read and write**"


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    return World(settings, redis_conn, no_unmocked_http, monkeypatch)


def new_tokens(world: World) -> None:
    """Let the cached installation token expire: the next call gets a token (and grants)
    of the installation as it is now, as after GitHub's hour."""
    keys = world.connection.keys(f"{world.settings.key('github', 'auth')}:*")
    if keys:
        world.connection.delete(*keys)


def git_or_pull_writes(world: World) -> list[tuple[str, str]]:
    return [(m, p) for m, p in world.writes() if "/git/" in p or "/pulls" in p or "/check" in p]


def test_a_token_without_workflows_blocks_the_request_before_any_branch_or_pull_request(world):
    world.github.granted.pop("workflows")

    assert world.comment(CREATE) == {"create-service": "failed"}

    todo = world.todo()
    (line,) = [line for line in todo.splitlines() if NOTE_PREFIX in line]
    assert WORKFLOWS in line and "Permissions & events" in line
    assert "accepts the new permissions for the installation" in line and "/idp retry" in line
    assert set(world.github.refs) == {"main"} and world.github.pulls == {}
    assert git_or_pull_writes(world) == []  # no tree, commit, ref, pull request or check
    assert world.reactions() == ["eyes", "confused"]
    assert world.session.status == "failed"


def test_once_the_permission_is_accepted_retry_opens_the_pull_request_and_the_line_goes(world):
    world.github.granted.pop("workflows")
    world.comment(CREATE)

    world.github.granted["workflows"] = "write"  # the owner accepted the App's new permission
    new_tokens(world)
    assert world.comment("/idp retry")["retry"] in ("done", "waiting")

    assert NOTE_PREFIX not in world.todo()
    pull = world.pull()
    assert any(p.startswith(".github/workflows/") for p in world.github.files(pull["branch"]))
    assert "- [x] " in world.todo()


def test_without_issues_write_the_job_writes_nothing_and_logs_why(world, caplog):
    world.github.granted["issues"] = "read"

    with caplog.at_level(logging.ERROR, logger="app.handling.preflight"):
        result = world.comment(CREATE)

    assert result == {"blocked": "the App's installation lacks issues: write"}
    assert world.writes() == []  # not even the 👀 reaction
    (record,) = caplog.records
    assert "cannot answer on acme/payments" in record.getMessage()
    assert "Issues: Read and write" in record.getMessage()


def test_commands_that_only_answer_need_only_issues_write(world):
    world.github.granted |= {"contents": "read", "checks": "read"}
    world.github.granted.pop("workflows")  # GitHub's `workflows` is write or nothing

    assert world.comment("/idp help") == {"help": "answered"}
    (reply,) = world.replies()
    assert "Your permission here" in reply


def test_a_refusal_github_sends_anyway_is_explained_in_the_same_words(world):
    # The grants said yes, GitHub said no (the permission was revoked after the token).
    refused = httpx.Response(
        403,
        json={"message": "Resource not accessible by integration", "status": "403"},
        headers={"X-Accepted-GitHub-Permissions": "pull_requests=write"},
    )
    world.github.fail("POST", r"/pulls$", refused)

    world.comment(CREATE)

    todo = world.todo()
    assert "Resource not accessible by integration" in todo
    assert "lacks the **Pull requests: Read and write** permission" in todo
    assert world.github.pulls == {}


def test_a_review_without_contents_write_says_so_and_pushes_nothing(
    settings, redis_conn, no_unmocked_http, monkeypatch
):
    world = ReviewWorld(settings, redis_conn, no_unmocked_http, monkeypatch, real_tools=True)
    world.comment(CREATE)
    commits, status = world.commits_on(world.session.branch), world.session.status
    world.github.granted["contents"] = "read"
    new_tokens(world)

    (result,) = world.review("alice", "/idp set replicas=3")

    assert result == {"review": "failed"}
    assert world.commits_on(world.session.branch) == commits
    line = next(line for line in world.todo().splitlines() if NOTE_PREFIX in line)
    assert "**Contents: Read and write**" in line and "submit the review" in line
    assert world.session.status == status  # the service itself stays as it was


@pytest.mark.anyio
async def test_the_local_forge_grants_what_it_is_told(tmp_path):
    repo = RepoRef("acme", "payments")

    assert await LocalForge(tmp_path).granted_permissions(repo) == APP_PERMISSIONS | {
        "administration": "write"
    }
    narrow = LocalForge(tmp_path, granted={"issues": "write"})
    assert await narrow.granted_permissions(repo) == {"issues": "write"}
