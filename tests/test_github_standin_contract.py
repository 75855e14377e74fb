"""The GitHub stand-in (`FakeGitHub`, tests/fake_github.py) behaves like GitHub where the App
depends on it. Each test names the docs.github.com page it follows and drives the stand-in
over HTTP the way any client would, with an installation token it minted first.
"""

from __future__ import annotations

import importlib

import httpx
import pytest
from githubkit.compat import type_validate_python

from app.github.auth import ENTERPRISE_API_VERSION, LATEST_API_VERSION
from tests import github_api as gh
from tests import github_repos_api as admin_api
from tests import github_rules as rules
from tests.fake_github import FakeGitHub

REPO = gh.HOME.url
WORKFLOW = ".github/workflows/payments-api.yml"
# Any three-part token is a JWT to the stand-in: the App's own endpoints take it.
APP_JWT = {"Authorization": "Bearer e30.e30.c2ln"}


def installation(github: FakeGitHub) -> httpx.Client:
    """A client with a fresh installation token, as the App's auth flow gets one."""
    url = f"{gh.API}/app/installations/{gh.INSTALLATION_ID}/access_tokens"
    minted = httpx.post(url, headers=APP_JWT)
    assert minted.status_code == 201
    token = minted.json()["token"]
    return httpx.Client(headers={"Authorization": f"token {token}"})


def commit(client: httpx.Client, files: dict[str, str], parent: str) -> str:
    """A commit of `files` on top of `parent` through the Git Data API; its sha."""
    base_tree = client.get(f"{REPO}/git/commits/{parent}").json()["tree"]["sha"]
    entries = [
        {"path": p, "mode": "100644", "type": "blob", "content": t} for p, t in files.items()
    ]
    tree = client.post(f"{REPO}/git/trees", json={"base_tree": base_tree, "tree": entries})
    body = {"message": "Add files", "tree": tree.json()["sha"], "parents": [parent]}
    return client.post(f"{REPO}/git/commits", json=body).json()["sha"]


# -- installation tokens and what they grant ------------------------------------------------


def test_a_token_grants_what_the_manifest_asks_for_workflows_included(github):
    """The token response lists the installation's permissions:
    https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app.
    The stand-in's installation grants github-app.yml's `default_permissions` (what an owner
    accepts on installing), so this fails if the manifest loses `workflows`."""
    url = f"{gh.API}/app/installations/{gh.INSTALLATION_ID}/access_tokens"
    minted = httpx.post(url, headers=APP_JWT).json()

    assert minted["permissions"] == gh.manifest_permissions() == github.granted
    assert minted["permissions"]["workflows"] == "write"
    assert "administration" not in minted["permissions"]  # only where repos are created


def test_a_token_keeps_the_grants_of_the_moment_it_was_minted(github):
    """Installation tokens carry the permissions granted when they were created; a change
    applies to tokens minted afterwards:
    https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app."""
    before = installation(github)
    github.granted["checks"] = "read"
    after = installation(github)
    run = {"name": "idp", "head_sha": github.refs["main"], "status": "completed"}
    run |= {"conclusion": "success", "output": {"title": "t", "summary": "s"}}

    assert before.post(f"{REPO}/check-runs", json=run).status_code == 201
    refused = after.post(f"{REPO}/check-runs", json=run)
    assert refused.status_code == 403


def test_an_unknown_token_is_refused_with_401(github):
    """A token GitHub did not issue (or that expired) is "Bad credentials", 401:
    https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api."""
    answer = httpx.get(REPO, headers={"Authorization": "token ghs_never_issued"})

    assert answer.status_code == 401 and answer.json()["message"] == "Bad credentials"


def test_a_write_without_its_permission_is_403_and_names_the_permissions_accepted(github):
    """403 "Resource not accessible by integration", with X-Accepted-GitHub-Permissions
    listing the permission sets the endpoint takes, separated by ';':
    https://docs.github.com/en/rest/authentication/permissions-required-for-github-apps and
    https://github.blog/changelog/2023-08-10-x-accepted-github-permissions-header-for-fine-grained-permission-actors."""
    github.granted |= {"issues": "read", "pull_requests": "read"}
    client = installation(github)

    refused = client.post(f"{REPO}/issues/7/comments", json={"body": "hi"})

    assert refused.status_code == 403
    assert refused.json()["message"] == "Resource not accessible by integration"
    assert refused.headers["X-Accepted-GitHub-Permissions"] == "issues=write; pull_requests=write"
    assert client.get(f"{REPO}/issues/7/comments").status_code == 200  # reading still works


# -- a repository the installation cannot see ----------------------------------------------


def test_a_repository_the_installation_cannot_see_is_404_not_403(github):
    """GitHub answers 404, never 403, for a private repository the caller cannot see, so
    as not to confirm it exists ("404 error for an existing repository"):
    https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api."""
    github.visible = False  # removed from the installation's selected repositories
    client = installation(github)

    for answer in (
        client.get(REPO),
        client.get(f"{REPO}/contents/README.md"),
        client.post(f"{REPO}/issues/7/comments", json={"body": "hi"}),
        client.post(f"{REPO}/git/refs", json={"ref": "refs/heads/x", "sha": github.refs["main"]}),
    ):
        assert answer.status_code == 404, answer.request.url
        assert answer.json()["message"] == "Not Found"
    assert httpx.get(REPO).status_code == 404  # and so it is without any token


def test_another_repositorys_file_is_served_to_the_installation_and_404_outside_it(github):
    """The org's `.github` repository and `_extends` targets are read with the same
    installation token: GET /repos/{owner}/{repo}/contents/{path} answers the file, and 404
    for a repository outside the installation exactly as for a missing one
    (https://docs.github.com/en/rest/repos/contents#get-repository-content)."""
    github.repo_files["acme/.github"] = {".github/idp-copilot.yml": "labels: [org]\n"}
    client = installation(github)
    org = f"{gh.API}/repos/acme/.github/contents/.github/idp-copilot.yml"

    found = client.get(org)
    outside = client.get(f"{gh.API}/repos/acme/secret/contents/.github/idp-copilot.yml")
    missing = client.get(f"{gh.API}/repos/acme/.github/contents/other.yml")

    assert found.status_code == 200
    assert found.json()["type"] == "file" and found.json()["path"] == ".github/idp-copilot.yml"
    assert found.json()["url"].startswith(f"{gh.API}/repos/acme/.github/contents/")
    assert outside.status_code == missing.status_code == 404
    assert outside.json()["message"] == "Not Found"
    assert httpx.get(org).status_code == 404  # and so it is without any token


# -- a workflow file needs `workflows: write` -----------------------------------------------


@pytest.mark.parametrize("existing_branch", [False, True], ids=["create-ref", "update-ref"])
def test_a_ref_update_bringing_a_workflow_file_needs_the_workflows_permission(
    github, existing_branch
):
    """GitHub refuses a ref update whose commits add, change or delete a file under
    .github/workflows/ when the App lacks `workflows: write`: 422 "refusing to allow a
    GitHub App to create or update workflow `…` without `workflows` permission". The trees
    and commits are created; the ref does not move.
    https://docs.github.com/en/rest/git/refs#update-a-reference and
    https://docs.github.com/en/rest/authentication/permissions-required-for-github-apps#repository-permissions-for-workflows."""
    github.granted.pop("workflows")
    if existing_branch:
        github.push("idp/x", {"notes.md": "x\n"}, "A branch")
    client = installation(github)
    before = github.refs.get("idp/x")
    parent = before or github.refs["main"]
    sha = commit(client, {"k8s/deploy.yaml": "kind: Deployment\n", WORKFLOW: "on: push\n"}, parent)

    if existing_branch:
        refused = client.patch(f"{REPO}/git/refs/heads/idp/x", json={"sha": sha})
    else:
        refused = client.post(f"{REPO}/git/refs", json={"ref": "refs/heads/idp/x", "sha": sha})

    assert refused.status_code == 422
    assert refused.json()["message"] == (
        f"refusing to allow a GitHub App to create or update workflow `{WORKFLOW}` without "
        "`workflows` permission"
    )
    assert github.refs.get("idp/x") == before
    assert sha in github.commits


def test_a_ref_update_without_workflow_files_needs_no_workflows_permission(github):
    """Only changes under .github/workflows/ need `workflows`; a branch that merely holds
    the default branch's workflow files unchanged is fine too:
    https://docs.github.com/en/rest/authentication/permissions-required-for-github-apps#repository-permissions-for-workflows."""
    github.push("main", {WORKFLOW: "on: push\n"}, "CI, pushed by a person")
    github.granted.pop("workflows")
    client = installation(github)
    sha = commit(client, {"k8s/deploy.yaml": "kind: Deployment\n"}, github.refs["main"])

    created = client.post(f"{REPO}/git/refs", json={"ref": "refs/heads/idp/x", "sha": sha})

    assert created.status_code == 201 and github.refs["idp/x"] == sha


def test_with_the_workflows_permission_the_same_ref_update_goes_through(github):
    """The App's manifest asks for `workflows: write`, so its commits carrying a workflow
    land: https://docs.github.com/en/rest/git/refs#create-a-reference."""
    client = installation(github)
    sha = commit(client, {WORKFLOW: "on: push\n"}, github.refs["main"])

    created = client.post(f"{REPO}/git/refs", json={"ref": "refs/heads/idp/x", "sha": sha})

    assert created.status_code == 201 and github.files("idp/x")[WORKFLOW] == "on: push\n"


# -- reactions ------------------------------------------------------------------------------


def test_a_reaction_already_made_answers_200_with_the_existing_one(github):
    """ "A response with an HTTP 200 status means that you already added the reaction type
    to this issue comment"; 201 for a new one; GET lists each once:
    https://docs.github.com/en/rest/reactions/reactions#create-reaction-for-an-issue-comment
    and #list-reactions-for-an-issue-comment."""
    comment = github.add_comment(7, "/idp plan", gh.user("alice", id=77))
    client = installation(github)
    url = f"{REPO}/issues/comments/{comment}/reactions"

    first = client.post(url, json={"content": "eyes"})
    again = client.post(url, json={"content": "eyes"})
    other = client.post(url, json={"content": "rocket"})

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"] != other.json()["id"]
    listed = client.get(url).json()
    assert [r["content"] for r in listed] == ["eyes", "rocket"]
    assert client.get(url, params={"content": "rocket"}).json() == [other.json()]


def test_a_reaction_on_a_comment_that_does_not_exist_is_404(github):
    """https://docs.github.com/en/rest/reactions/reactions#create-reaction-for-an-issue-comment
    (404 "Resource not found")."""
    client = installation(github)

    answer = client.post(f"{REPO}/issues/comments/424242/reactions", json={"content": "eyes"})

    assert answer.status_code == 404


# -- reviews and paging ---------------------------------------------------------------------


def _pull_with_review(github: FakeGitHub, comments: int) -> tuple[int, int, list[int]]:
    github.push("idp/x", {"app.py": "".join(f"line {n}\n" for n in range(1, 20))}, "App")
    client = installation(github)
    opened = client.post(f"{REPO}/pulls", json={"title": "x", "head": "idp/x", "base": "main"})
    number = opened.json()["number"]
    lines = [("app.py", n, f"comment {n}") for n in range(1, comments + 1)]
    review_id, ids = github.add_review(number, "alice", "Please change", "changes_requested", lines)
    return number, review_id, ids


def test_a_review_is_read_whole_and_its_comments_page_with_link_headers(github):
    """GET a review, then its comments page by page: per_page (default 30, at most 100) and
    page, with a Link header of prev, next, last and first URLs, none when all fits:
    https://docs.github.com/en/rest/pulls/reviews#get-a-review-for-a-pull-request,
    https://docs.github.com/en/rest/pulls/reviews#list-comments-for-a-pull-request-review and
    https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api."""
    number, review_id, ids = _pull_with_review(github, comments=5)
    client = installation(github)
    url = f"{REPO}/pulls/{number}/reviews/{review_id}"

    review = client.get(url).json()
    assert (review["id"], review["state"], review["body"]) == (
        review_id,
        "CHANGES_REQUESTED",
        "Please change",
    )

    first = client.get(f"{url}/comments", params={"per_page": 2})
    links = first.links
    assert set(links) == {"next", "last"}
    assert httpx.URL(links["last"]["url"]).params["page"] == "3"
    seen, page = [c["id"] for c in first.json()], first
    while "next" in page.links:
        page = client.get(page.links["next"]["url"])
        seen += [c["id"] for c in page.json()]
    assert seen == ids
    assert set(page.links) == {"prev", "first"}
    everything = client.get(f"{url}/comments")
    assert "Link" not in everything.headers and len(everything.json()) == 5


def test_a_review_asked_for_under_another_pull_request_is_404(github):
    """A review belongs to one pull request:
    https://docs.github.com/en/rest/pulls/reviews#get-a-review-for-a-pull-request."""
    number, review_id, _ = _pull_with_review(github, comments=1)
    client = installation(github)

    assert client.get(f"{REPO}/pulls/{number + 1}/reviews/{review_id}").status_code == 404
    assert client.get(f"{REPO}/pulls/{number + 1}/reviews/{review_id}/comments").status_code == 404


def test_paging_caps_per_page_at_100_and_keeps_other_parameters(github):
    """per_page above 100 gives 100; the Link URLs keep the request's other parameters:
    https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api."""
    comment = github.add_comment(7, "hi", gh.user("alice", id=77))
    for n in range(120):
        github.react(comment, "heart", gh.user(f"user{n}", id=1000 + n))
    client = installation(github)
    url = f"{REPO}/issues/comments/{comment}/reactions"

    page = client.get(url, params={"per_page": 500, "content": "heart"})

    assert len(page.json()) == 100
    nxt = httpx.URL(page.links["next"]["url"]).params
    assert (nxt["content"], nxt["per_page"], nxt["page"]) == ("heart", "100", "2")
    assert len(client.get(page.links["next"]["url"]).json()) == 20


# -- every body valid in both API versions the App speaks -----------------------------------

VERSIONS = [ENTERPRISE_API_VERSION, LATEST_API_VERSION]
SHA, TREE, PARENT = "a" * 40, "b" * 40, "c" * 40
_review_line = {
    "review_id": 9,
    "path": "app.py",
    "line": 3,
    "diff_hunk": "@@ -0,0 +1,3 @@\n+a\n+b\n+c",
    "body": "Please change",
    "commit_id": SHA,
}
BODIES = {
    "SimpleUser": lambda: gh.user("alice"),
    "FullRepository": lambda: gh.repository(at=gh.Where(api="https://ghe.example.com/api/v3")),
    "Issue": gh.issue,
    "IssueComment": lambda: gh.issue_comment(1, "hi", author=gh.user("alice")),
    "Reaction": lambda: gh.reaction(1, "eyes"),
    "Reaction (deleted account)": lambda: {**gh.reaction(2, "heart"), "user": None},
    "GitRef": lambda: gh.git_ref("main", SHA),
    "GitCommit": lambda: gh.git_commit(SHA, TREE, [PARENT], "m"),
    "GitTree": lambda: gh.git_tree(TREE, {"README.md": ("100644", SHA)}),
    "ContentFile": lambda: gh.content_file("a/b.txt", "hello"),
    "Blob": lambda: gh.blob(SHA, "x"),
    "InstallationToken": lambda: gh.installation_token("ghs_x"),
    "RepositoryCollaboratorPermission": lambda: gh.collaborator_permission("bob", "write"),
    "PullRequest": lambda: gh.pull_request(3, "idp/x", SHA),
    "PullRequestSimple": lambda: gh.pull_request(3, "idp/x", SHA),
    "CheckRun": lambda: gh.check_run(1, SHA, "idp", "success", "t", "s"),
    "Label": lambda: gh.label(1, "idp"),
    "PullRequestReview": lambda: gh.pull_review(9, 3, "Looks good", "approved", SHA),
    "ReviewComment": lambda: gh.review_comment(11, 3, **_review_line),
    "ReviewComment (file)": lambda: gh.review_comment(12, 3, **{**_review_line, "line": None}),
    "PullRequestReviewComment": lambda: gh.review_comment(13, 3, **_review_line, in_reply_to=11),
    "Installation": lambda: admin_api.installation(77, "acme"),
    "ProtectedBranch": lambda: admin_api.protected_branch(
        {"enforce_admins": True, "required_status_checks": {"strict": True, "checks": []}},
        "main",
    ),
    "BasicError": lambda: gh.error("Not Found"),
    "BasicError (403)": lambda: rules.not_accessible(rules.write("contents")).json(),
    "BasicError (workflows)": lambda: rules.workflow_refused(WORKFLOW).json(),
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", list(BODIES))
def test_every_body_is_valid_under_both_api_versions_the_app_speaks(name, version):
    """Response bodies follow GitHub's schema for each REST API version the App may ask for
    (app/github/auth.py: the latest on api.github.com, 2022-11-28 on Enterprise Server):
    https://docs.github.com/en/rest/about-the-rest-api/api-versions. githubkit's models
    for each version are generated from GitHub's OpenAPI description."""
    models = importlib.import_module(f"githubkit_schemas.v{version.replace('-', '_')}.models")
    model = getattr(models, name.split(" ")[0])

    type_validate_python(model, BODIES[name]())  # raises when a field is missing or wrong
