"""GitHubForge asks GitHub only what the job does not know yet: the todo comment looked up
early is not looked up again, a branch the forge has just created has no pull request to
look for, and the default branch is read alongside the session branch's ref."""

from __future__ import annotations

import pytest

from app.domain.todo import marker
from app.github.forge import RepoRef
from app.github.github_forge import GitHubForge
from tests import github_api as gh

REPO = RepoRef(gh.OWNER, gh.NAME, gh.INSTALLATION_ID)
FILES = {"services/payments-api/k8s/base/service.yaml": "kind: Service\n"}
pytestmark = pytest.mark.anyio


def calls(github, method: str, end: str) -> int:
    return sum(1 for c in github.calls if c[0] == method and c[1].split("?")[0].endswith(end))


@pytest.fixture
def forge(app_settings, redis_conn):
    return GitHubForge(app_settings, redis_conn)


async def test_a_prefetched_todo_lookup_serves_the_first_upsert(github, forge):
    existing = github.add_comment(7, f"{marker('s1')}\nold plan")
    forge.prefetch_todo(REPO, 7, "s1")

    found = await forge.upsert_todo_comment(REPO, 7, "s1", f"{marker('s1')}\nnew plan", None)

    assert found == existing
    assert github.comments[existing]["body"] == f"{marker('s1')}\nnew plan"
    assert calls(github, "GET", "/issues/7/comments") == 1


async def test_without_a_todo_the_prefetched_lookup_leads_to_one_new_comment(github, forge):
    forge.prefetch_todo(REPO, 7, "s1")
    forge.prefetch_todo(REPO, 7, "s1")  # asked twice: looked up once

    created = await forge.upsert_todo_comment(REPO, 7, "s1", "plan", None)
    again = await forge.upsert_todo_comment(REPO, 7, "s1", "plan", None)

    assert created == again  # the second upsert looked it up afresh, and found it
    assert calls(github, "GET", "/issues/7/comments") == 2
    assert calls(github, "POST", "/issues/7/comments") == 1


async def test_a_new_branch_gets_its_pull_request_without_a_lookup(github, forge):
    await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")
    opened = await forge.ensure_pull_request(REPO, "idp/payments-api", "Add", "v1")
    found = await forge.ensure_pull_request(REPO, "idp/payments-api", "Add", "v2")

    assert opened.created and not found.created and opened.number == found.number
    assert calls(github, "GET", "/pulls") == 1  # only the second call looked
    assert calls(github, "GET", "/repos/acme/payments") == 1  # the default branch, once


async def test_an_existing_branch_is_committed_to_and_its_pull_request_looked_up(
    github, forge, app_settings, redis_conn
):
    await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")
    await forge.ensure_pull_request(REPO, "idp/payments-api", "Add", "v1")
    later = GitHubForge(app_settings, redis_conn)  # the next job

    changed = {"services/payments-api/k8s/base/service.yaml": "kind: Service\n# v2\n"}
    commit = await later.commit_files(REPO, "idp/payments-api", changed, "Change")
    pr = await later.ensure_pull_request(REPO, "idp/payments-api", "Add", "v1")

    assert commit.changed and github.refs["idp/payments-api"] == commit.sha
    assert not pr.created and len(github.pulls) == 1
