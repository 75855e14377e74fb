"""The GitHub stand-in's pull request, check run, commit status and branch protection reads
(tests/fake_github_checks.py) behave like GitHub's, where `/idp apply`'s requirements depend
on them. Each test names the docs.github.com page it follows."""

from __future__ import annotations

import importlib

import pytest
from githubkit.compat import type_validate_python

from app.github.auth import ENTERPRISE_API_VERSION, LATEST_API_VERSION
from tests import github_api as gh
from tests.test_github_standin_contract import installation

REPO = gh.HOME.url
VERSIONS = [ENTERPRISE_API_VERSION, LATEST_API_VERSION]


def open_pull(github) -> tuple[int, str]:
    sha = github.push("idp/payments-api", {"a.txt": "a"}, "Add a")
    client = installation(github)
    body = {"title": "t", "head": "idp/payments-api", "base": "main", "body": ""}
    created = client.post(f"{REPO}/pulls", json=body)
    assert created.status_code == 201
    return created.json()["number"], sha


def models(version: str):
    return importlib.import_module(f"githubkit_schemas.v{version.replace('-', '_')}.models")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_pull_requests_mergeable_is_null_until_github_has_computed_it(github, version):
    """GET …/pulls/{n}: "The value of the mergeable attribute can be true, false, or null.
    If the value is null, then GitHub has started a background job to compute the
    mergeability": https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request."""
    number, _ = open_pull(github)
    github.computing(number)
    client = installation(github)

    first = client.get(f"{REPO}/pulls/{number}").json()
    second = client.get(f"{REPO}/pulls/{number}").json()

    assert (first["mergeable"], first["mergeable_state"]) == (None, "unknown")
    assert (second["mergeable"], second["mergeable_state"]) == (True, "clean")
    type_validate_python(models(version).PullRequest, first)
    assert client.get(f"{REPO}/pulls/999999").status_code == 404


def test_a_draft_reports_mergeable_state_draft(github):
    """A draft pull request cannot be merged; GitHub's `mergeable_state` says `draft`
    (https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request)."""
    number, _ = open_pull(github)
    github.pulls[number]["draft"] = True

    assert installation(github).get(f"{REPO}/pulls/{number}").json()["mergeable_state"] == "draft"


@pytest.mark.parametrize("version", VERSIONS)
def test_check_runs_of_a_commit_are_the_latest_of_each_name_and_need_checks_read(github, version):
    """GET …/commits/{ref}/check-runs lists, by default (`filter=latest`), the most recent
    run of each name, with `total_count`; GitHub Apps need Checks read, and an unknown sha is
    422: https://docs.github.com/en/rest/checks/runs#list-check-runs-for-a-git-reference."""
    _, sha = open_pull(github)
    github.add_check(sha, "build", conclusion="failure")
    github.add_check(sha, "build")
    github.add_check(sha, "lint", status="in_progress", conclusion=None)
    client = installation(github)

    listed = client.get(f"{REPO}/commits/{sha}/check-runs").json()

    assert listed["total_count"] == 2
    assert {(r["name"], r["status"], r["conclusion"]) for r in listed["check_runs"]} == {
        ("build", "completed", "success"),
        ("lint", "in_progress", None),
    }
    for run in listed["check_runs"]:
        type_validate_python(models(version).CheckRun, run)
    assert client.get(f"{REPO}/commits/{'f' * 40}/check-runs").status_code == 422
    github.granted.pop("checks")
    assert installation(github).get(f"{REPO}/commits/{sha}/check-runs").status_code == 403


@pytest.mark.parametrize("version", VERSIONS)
def test_the_combined_status_is_failure_before_pending_and_needs_statuses_read(github, version):
    """GET …/commits/{ref}/status: `state` is failure if any context reports error or
    failure, pending if there are no statuses or a context is pending, else success; the
    newest status of each context counts; Commit statuses read:
    https://docs.github.com/en/rest/commits/statuses#get-the-combined-status-for-a-specific-reference."""
    _, sha = open_pull(github)
    client = installation(github)
    assert client.get(f"{REPO}/commits/{sha}/status").json()["state"] == "pending"
    github.add_status(sha, "ci/a", "failure")
    github.add_status(sha, "ci/a", "success")
    github.add_status(sha, "ci/b", "pending")

    combined = client.get(f"{REPO}/commits/{sha}/status").json()

    assert combined["state"] == "pending"
    assert {(s["context"], s["state"]) for s in combined["statuses"]} == {
        ("ci/a", "success"),
        ("ci/b", "pending"),
    }
    type_validate_python(models(version).CombinedCommitStatus, combined)
    github.add_status(sha, "ci/c", "error")
    assert client.get(f"{REPO}/commits/{sha}/status").json()["state"] == "failure"
    github.granted.pop("statuses")
    assert installation(github).get(f"{REPO}/commits/{sha}/status").status_code == 403


def test_branch_protection_needs_administration_read_and_is_404_when_absent(github):
    """GET …/branches/{branch}/protection needs Administration read, and answers 404
    "Branch not protected" for an unprotected branch:
    https://docs.github.com/en/rest/branches/branch-protection#get-branch-protection."""
    assert installation(github).get(f"{REPO}/branches/main/protection").status_code == 403
    github.granted["administration"] = "read"
    client = installation(github)

    absent = client.get(f"{REPO}/branches/main/protection")
    github.require_checks("main", ["build"])
    found = client.get(f"{REPO}/branches/main/protection").json()

    assert (absent.status_code, absent.json()["message"]) == (404, "Branch not protected")
    assert found["required_status_checks"]["contexts"] == ["build"]
