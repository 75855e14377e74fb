"""The GitHub App permissions IDP Copilot uses: which feature needs which, what each command
needs before its first write, and the one sentence that names a missing one.

Derived from the endpoints `GitHubForge` calls (app/github/). GitHub's list of the permission
each endpoint needs: https://docs.github.com/en/rest/authentication/permissions-required-for-
github-apps. An installation token lists what the installation granted (POST
/app/installations/{id}/access_tokens), so a job compares before it writes; a refusal GitHub
sends anyway (403 "Resource not accessible by integration", 422 "refusing to allow a GitHub
App to create or update workflow … without `workflows` permission") is explained in the same
words by `refused_permission` + `grant_sentence`. Pure: no githubkit, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

LEVELS = {"none": 0, "read": 1, "write": 2, "admin": 3}
LEVEL_TITLE = {"read": "Read-only", "write": "Read and write", "admin": "Admin"}


@dataclass(frozen=True)
class AppPermission:
    """One repository permission as GitHub's App settings page names it, and why we ask."""

    title: str
    why: str
    doc: str


DOCS = "https://docs.github.com/en/rest"
PERMISSIONS: dict[str, AppPermission] = {
    "issues": AppPermission(
        "Issues",
        "the todo comment, replies, reactions and labels",
        f"{DOCS}/issues/comments#create-an-issue-comment",
    ),
    "pull_requests": AppPermission(
        "Pull requests",
        "opening and updating the App's pull request, reading reviews and answering threads",
        f"{DOCS}/pulls/pulls#create-a-pull-request",
    ),
    "contents": AppPermission(
        "Contents",
        "reading the repo's config and committing the generated files to the App's branch",
        f"{DOCS}/git/refs#update-a-reference",
    ),
    "workflows": AppPermission(
        "Workflows",
        "every generated pull request carries a `.github/workflows/` file, and GitHub refuses "
        "a commit that adds or changes one without it",
        f"{DOCS}/authentication/permissions-required-for-github-apps"
        "#repository-permissions-for-workflows",
    ),
    "checks": AppPermission(
        "Checks",
        "the validation check run on the pull request's head",
        f"{DOCS}/checks/runs#create-a-check-run",
    ),
    "actions": AppPermission(
        "Actions",
        "reading the jobs and log of a workflow run that failed on the App's pull request, and "
        "re-running its failed jobs on `/idp retry`",
        f"{DOCS}/actions/workflow-runs#re-run-failed-jobs-from-a-workflow-run",
    ),
    "statuses": AppPermission(
        "Commit statuses",
        "the `checks` apply requirement: reading the commit statuses on the pull request's head",
        f"{DOCS}/commits/statuses#get-the-combined-status-for-a-specific-reference",
    ),
    "metadata": AppPermission(
        "Metadata",
        "reading the repository and a commenter's role on it",
        f"{DOCS}/collaborators/collaborators#get-repository-permissions-for-a-user",
    ),
    "administration": AppPermission(
        "Administration",
        "creating repositories and protecting their default branch (only where repository "
        "creation is enabled)",
        f"{DOCS}/repos/repos#create-an-organization-repository",
    ),
}

# What a job that only answers needs (help, status, ask, feedback, cancel, refusals).
COMMENTS: dict[str, str] = {"issues": "write"}
# A run of the agent or a revision may commit (a workflow file included), open or update the
# pull request, answer review threads and create the check run.
AGENT_RUN: dict[str, str] = {
    "issues": "write",
    "contents": "write",
    "workflows": "write",
    "pull_requests": "write",
    "checks": "write",
    "metadata": "read",
}
# CI on the App's pull request: the run's jobs and log (read), a re-run (write).
CI_READ: dict[str, str] = {"actions": "read"}
CI_RERUN: dict[str, str] = {"actions": "write"}
NEEDS_BY_VERB: dict[str, dict[str, str]] = {
    verb: AGENT_RUN
    for verb in (
        "create-service",
        "request",
        "plan",
        "answer",
        "retry",
        "apply",
        "deploy",
        "merged",
        "review",
        "set",
        "upgrade",
        "sweep",
    )
}
NEEDS_BY_VERB["ci"] = {**AGENT_RUN, **CI_READ}
# The default manifest (github-app.yml) asks for exactly these; administration is added only
# where repository creation is enabled.
# Read only by `/idp apply` when a repository's `apply_requirements` holds `checks` (a
# missing grant fails that requirement, with GitHub's refusal, and nothing else).
APPLY_CHECKS: dict[str, str] = {"statuses": "read"}
APP_PERMISSIONS: dict[str, str] = {**COMMENTS, **AGENT_RUN, **CI_RERUN, **APPLY_CHECKS}
REPO_CREATION: dict[str, str] = {"administration": "write"}
# `/idp create-repo`: the repository, the service's files (a workflow among them) pushed to
# it, and its branch protection.
NEEDS_BY_VERB["create-repo"] = {
    "issues": "write",
    "contents": "write",
    "workflows": "write",
    "metadata": "read",
    **REPO_CREATION,
}


def needs_for(verb: str | None) -> dict[str, str]:
    """The permissions a job running `verb` needs before its first write."""
    return NEEDS_BY_VERB.get(verb or "", COMMENTS)


def missing(needed: Mapping[str, str], granted: Mapping[str, str]) -> dict[str, str]:
    """Each needed permission the grant lacks or holds at a lower level, with the level."""
    return {
        name: level
        for name, level in needed.items()
        if LEVELS.get(str(granted.get(name, "none")), 0) < LEVELS[level]
    }


def _named(name: str, level: str) -> str:
    title = PERMISSIONS[name].title if name in PERMISSIONS else name
    return f"**{title}: {LEVEL_TITLE.get(level, level)}**"


def grant_sentence(lacking: Mapping[str, str], then: str = "run `/idp retry`") -> str:
    """One line naming the missing permissions, why the App needs them, and how an owner
    grants them (GitHub applies new permissions only once the installation accepts them);
    `then` says what to do afterwards."""
    names = [_named(n, lv) for n, lv in lacking.items()]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    whys = "; ".join(PERMISSIONS[n].why for n in lacking if n in PERMISSIONS)
    plural = "permissions" if len(names) > 1 else "permission"
    return (
        f"the App's installation lacks the {listed} {plural}"
        + (f" ({whys})" if whys else "")
        + ". The App's owner adds it on the App's settings page → Permissions & events, and "
        "an owner of this account accepts the new permissions for the installation "
        f"(Settings → GitHub Apps → Configure → Review request); then {then}."
    )


# The message GitHub sends when a ref update adds, changes or deletes a workflow file and the
# token lacks `workflows` (the same words as git push's "remote rejected").
_WORKFLOW_REFUSAL = "without `workflows` permission"
_NOT_ACCESSIBLE = "resource not accessible by integration"


def _from_header(accepted: str) -> tuple[str, str] | None:
    """The first permission of GitHub's X-Accepted-GitHub-Permissions header, which lists
    alternatives separated by ';', each a ','-separated list of `name=level`."""
    first = accepted[:500].split(";")[0].split(",")[0].strip()
    name, _, level = first.partition("=")
    name, level = name.strip(), level.strip()
    return (name, level) if name and level in LEVEL_TITLE else None


def _from_request(method: str, path: str) -> tuple[str, str] | None:
    """The permission a write of the App needs, by endpoint (the requests are our own)."""
    if method == "GET":
        return None
    if path.endswith("/protection") or path.endswith("/generate"):
        return ("administration", "write")
    if "/orgs/" in path and path.endswith("/repos"):
        return ("administration", "write")
    for fragment, name in (
        ("/git/", "contents"),
        ("/check-runs", "checks"),
        ("/actions/", "actions"),
        ("/pulls", "pull_requests"),
        ("/issues/", "issues"),
    ):
        if fragment in path:
            return (name, "write")
    return None


def refused_permission(
    status: int, message: str, method: str = "", path: str = "", accepted: str = ""
) -> dict[str, str] | None:
    """The permission GitHub's refusal of a write points at, or None when the refusal is
    about something else (a conflict, a validation error, a rate limit)."""
    text = message[:1000].lower()
    if status == 422 and _WORKFLOW_REFUSAL in text:
        return {"workflows": "write"}
    if status != 403 or _NOT_ACCESSIBLE not in text:
        return None
    found = _from_header(accepted) or _from_request(method.upper(), path)
    return dict([found]) if found else None
