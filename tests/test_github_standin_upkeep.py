"""The GitHub stand-in's issues, pull request reads, branch trees and GraphQL `pinIssue`
(tests/fake_github_issues.py) behave like GitHub where upkeep depends on them. Each test
names the docs.github.com page it follows and drives the stand-in over HTTP.
"""

from __future__ import annotations

import importlib

import httpx
from githubkit.compat import type_validate_python

from app.github.auth import LATEST_API_VERSION
from tests import github_api as gh
from tests.fake_github import FakeGitHub
from tests.test_github_standin_contract import installation

REPO = gh.HOME.url
GRAPHQL = f"{gh.API}/graphql"
PIN = "mutation($issueId: ID!) { pinIssue(input: {issueId: $issueId}) { issue { number } } }"


def models():
    return importlib.import_module(
        f"githubkit_schemas.v{LATEST_API_VERSION.replace('-', '_')}.models"
    )


def test_issues_are_created_listed_and_edited_in_githubs_shapes(github: FakeGitHub):
    """https://docs.github.com/en/rest/issues/issues: create answers 201 with the issue, a
    title is required (422 without), list and get answer the same shape, update edits."""
    client = installation(github)

    created = client.post(f"{REPO}/issues", json={"title": "Dashboard", "body": "one"})
    untitled = client.post(f"{REPO}/issues", json={"body": "no title"})
    number = created.json()["number"]
    edited = client.patch(f"{REPO}/issues/{number}", json={"body": "two"})
    listed = client.get(f"{REPO}/issues", params={"state": "open"})

    assert created.status_code == 201 and untitled.status_code == 422
    type_validate_python(models().Issue, created.json())
    assert created.json()["user"]["type"] == "Bot"  # the App's bot opened it
    assert edited.json()["body"] == "two"
    assert [i["number"] for i in listed.json()] == [number]
    assert client.get(f"{REPO}/issues/999999").status_code == 404


def test_an_issue_write_needs_the_issues_permission(github: FakeGitHub):
    """Creating an issue needs "Issues" repository permissions (write):
    https://docs.github.com/en/rest/issues/issues#create-an-issue."""
    github.granted["issues"] = "read"
    client = installation(github)

    assert client.post(f"{REPO}/issues", json={"title": "t"}).status_code == 403


def test_a_pull_request_read_says_whether_it_was_merged(github: FakeGitHub):
    """https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request: `state` is open or
    closed, and `merged` tells a merged pull request from a closed one."""
    client = installation(github)
    github.push("feature", {"a.txt": "a\n"}, "Add a")
    number = client.post(
        f"{REPO}/pulls", json={"title": "t", "head": "feature", "base": "main"}
    ).json()["number"]

    before = client.get(f"{REPO}/pulls/{number}").json()
    github.merge(number)
    after = client.get(f"{REPO}/pulls/{number}").json()

    type_validate_python(models().PullRequest, after)
    assert (before["state"], before["merged"]) == ("open", False)
    assert (after["state"], after["merged"]) == ("closed", True)
    assert github.files("main")["a.txt"] == "a\n"


def test_a_tree_is_read_by_branch_name_recursively(github: FakeGitHub):
    """https://docs.github.com/en/rest/git/trees#get-a-tree: `tree_sha` is "the SHA1 value
    or ref (branch or tag) name of the tree"; `recursive` lists every file."""
    github.push("main", {"services/a/catalog-info.yaml": "x\n"}, "Add a")
    client = installation(github)

    tree = client.get(f"{REPO}/git/trees/main", params={"recursive": "1"}).json()

    type_validate_python(models().GitTree, tree)
    paths = {e["path"] for e in tree["tree"] if e["type"] == "blob"}
    assert {"README.md", "services/a/catalog-info.yaml"} <= paths


def test_pin_issue_pins_up_to_three_and_refuses_in_graphql_errors(github: FakeGitHub):
    """`pinIssue` (https://docs.github.com/en/graphql/reference/mutations#pinissue) takes the
    issue's node id; a repository pins up to three issues
    (https://docs.github.com/en/issues/tracking-your-work-with-issues/administering-issues/
    pinning-an-issue-to-your-repository). GraphQL answers 200 with `errors` when it refuses
    (https://docs.github.com/en/graphql/guides/forming-calls-with-graphql)."""
    client = installation(github)
    numbers = [github.open_issue(f"issue {n}", "") for n in range(4)]
    node = {n: client.get(f"{REPO}/issues/{n}").json()["node_id"] for n in numbers}

    answers = [
        client.post(GRAPHQL, json={"query": PIN, "variables": {"issueId": node[n]}})
        for n in numbers
    ]
    unknown = client.post(GRAPHQL, json={"query": PIN, "variables": {"issueId": "I_nope"}})

    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json()["data"]["pinIssue"] is not None for a in answers] == [True] * 3 + [False]
    assert "3 pinned issues" in answers[3].json()["errors"][0]["message"]
    assert github.pinned == numbers[:3]
    assert unknown.json()["errors"][0]["type"] == "NOT_FOUND"


def test_pin_issue_without_issues_write_is_forbidden(github: FakeGitHub):
    """An App's GraphQL call is limited to what its installation grants; a refused mutation
    is "Resource not accessible by integration"."""
    number = github.open_issue("dashboard", "")
    github.granted["issues"] = "read"
    client = installation(github)

    answer = client.post(GRAPHQL, json={"query": PIN, "variables": {"issueId": f"I_{number}"}})

    assert answer.json()["errors"][0]["message"] == "Resource not accessible by integration"
    assert github.pinned == []


def test_an_unknown_token_cannot_call_graphql(github: FakeGitHub):
    answer = httpx.post(
        GRAPHQL, json={"query": PIN}, headers={"Authorization": "token ghs_never_issued"}
    )

    assert answer.status_code == 401
