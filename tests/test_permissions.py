"""The App's permissions, declared and explained: github-app.yml asks for what the code
uses (and subscribes to what the router handles), the README's table says why, and GitHub's
refusals map to the permission they are about (app/github/permissions.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.github.permissions import (
    APP_PERMISSIONS,
    PERMISSIONS,
    grant_sentence,
    missing,
    needs_for,
    refused_permission,
)
from app.register import permission_warning
from app.webhooks import PULL_REQUEST_ROUTES, ROUTES

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = yaml.safe_load((ROOT / "github-app.yml").read_text())
WORKFLOW_422 = (
    "refusing to allow a GitHub App to create or update workflow "
    "`.github/workflows/payments-api.yml` without `workflows` permission"
)


def test_the_manifest_asks_for_exactly_what_the_code_needs_and_no_administration():
    asked = MANIFEST["default_permissions"]

    assert asked == APP_PERMISSIONS
    assert asked["workflows"] == "write"  # every generated pull request carries a workflow
    assert "administration" not in asked  # only where repository creation is enabled
    assert permission_warning(MANIFEST) is None


def test_register_warns_about_a_manifest_that_asks_for_too_little():
    old = {**MANIFEST, "default_permissions": {"issues": "write", "contents": "read"}}

    warning = permission_warning(old)

    assert warning is not None
    assert "contents: write" in warning and "workflows: write" in warning


def test_the_manifest_subscribes_to_every_event_the_router_handles():
    routed = {event for event, _ in ROUTES} | {event for event, _ in PULL_REQUEST_ROUTES}

    assert routed <= set(MANIFEST["default_events"])


def test_the_readme_table_names_each_permission_its_feature_and_its_doc_page():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Install on GitHub.com", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]

    for name in [*APP_PERMISSIONS, "administration"]:
        (row,) = [r for r in rows if r.startswith(f"| `{name}`")]
        assert "https://docs.github.com/" in row, row
    assert any(r.startswith("| `workflows` | write |") for r in rows)


def test_every_command_that_writes_files_needs_workflows_and_the_rest_only_comments():
    for verb in ("create-service", "request", "plan", "retry", "apply", "review", "set"):
        assert needs_for(verb)["workflows"] == "write"
    for verb in ("help", "status", "ask", "feedback", "cancel", None):
        assert needs_for(verb) == {"issues": "write"}


def test_missing_compares_levels():
    granted = {"issues": "write", "contents": "read", "metadata": "read"}

    assert missing({"issues": "read", "metadata": "read"}, granted) == {}
    assert missing(APP_PERMISSIONS, granted) == {
        "contents": "write",
        "workflows": "write",
        "pull_requests": "write",
        "checks": "write",
        "actions": "write",
        "statuses": "read",
    }


@pytest.mark.parametrize(
    ("status", "message", "method", "path", "header", "expected"),
    [
        (422, WORKFLOW_422, "POST", "/repos/a/b/git/refs", "", {"workflows": "write"}),
        (422, WORKFLOW_422, "PATCH", "/repos/a/b/git/refs/heads/x", "", {"workflows": "write"}),
        (
            403,
            "Resource not accessible by integration",
            "POST",
            "/repos/a/b/pulls",
            "pull_requests=write",
            {"pull_requests": "write"},
        ),
        (
            403,
            "Resource not accessible by integration",
            "POST",
            "/repos/a/b/issues/7/comments",
            "issues=write; pull_requests=write",
            {"issues": "write"},
        ),
        (
            403,
            "Resource not accessible by integration",
            "POST",
            "/api/v3/repos/a/b/check-runs",
            "",
            {"checks": "write"},
        ),
        (
            403,
            "Resource not accessible by integration",
            "PUT",
            "/repos/a/b/branches/main/protection",
            "",
            {"administration": "write"},
        ),
        (
            403,
            "Resource not accessible by integration",
            "POST",
            "/orgs/acme/repos",
            "",
            {"administration": "write"},
        ),
        (422, "Update is not a fast forward", "PATCH", "/repos/a/b/git/refs/heads/x", "", None),
        (403, "You have exceeded a secondary rate limit", "POST", "/repos/a/b/pulls", "", None),
        (404, "Not Found", "POST", "/repos/a/b/pulls", "", None),
    ],
)
def test_a_refusal_maps_to_the_permission_it_is_about(
    status, message, method, path, header, expected
):
    assert refused_permission(status, message, method, path, header) == expected


def test_the_sentence_names_the_permission_why_and_where_an_owner_grants_it():
    line = grant_sentence({"workflows": "write", "checks": "write"})

    assert "**Workflows: Read and write** and **Checks: Read and write** permissions" in line
    assert PERMISSIONS["workflows"].why in line
    assert "App's settings page → Permissions & events" in line
    assert "accepts the new permissions for the installation" in line
    assert "\n" not in line
