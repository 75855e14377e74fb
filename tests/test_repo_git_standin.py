"""The stand-in's repositories created by the App (`FakeRepoAdmin` with `RepoGit`,
tests/fake_repo_git.py) behave like GitHub's where `/idp create-repo` depends on them. Each
test names the docs.github.com page it follows and drives the stand-in over HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests import github_api as gh
from tests.github_repos_api import FakeRepoAdmin
from tests.test_github_standin_contract import installation

NEW = f"{gh.API}/repos/acme/billing-api"
ORG_REPOS = f"{gh.API}/orgs/acme/repos"
WORKFLOW = ".github/workflows/billing-api.yml"


@pytest.fixture
def admin(github, no_unmocked_http) -> FakeRepoAdmin:
    return FakeRepoAdmin(github, no_unmocked_http)


def create(client: httpx.Client, **body) -> httpx.Response:
    return client.post(ORG_REPOS, json={"name": "billing-api", "private": True, **body})


def push(client: httpx.Client, files: dict[str, str]) -> tuple[str, str]:
    """A commit of `files` on the new repository's main through the Git Data API: (its sha,
    the head it was built on)."""
    head = client.get(f"{NEW}/git/ref/heads/main").json()["object"]["sha"]
    base_tree = client.get(f"{NEW}/git/commits/{head}").json()["tree"]["sha"]
    entries = [
        {"path": p, "mode": "100644", "type": "blob", "content": t} for p, t in files.items()
    ]
    tree = client.post(f"{NEW}/git/trees", json={"base_tree": base_tree, "tree": entries})
    body = {"message": "Add service", "tree": tree.json()["sha"], "parents": [head]}
    return client.post(f"{NEW}/git/commits", json=body).json()["sha"], head


def test_a_repository_created_with_auto_init_holds_a_readme_commit(github, admin):
    """`auto_init: true` "creates an initial commit with empty README" on the default branch:
    https://docs.github.com/en/rest/repos/repos#create-an-organization-repository."""
    client = installation(github)

    made = create(client, auto_init=True)

    assert made.status_code == 201 and made.json()["default_branch"] == "main"
    readme = client.get(f"{NEW}/contents/README.md")
    assert readme.status_code == 200 and readme.json()["path"] == "README.md"
    assert admin.git["acme/billing-api"].files("main") == {"README.md": "# billing-api\n"}


def test_a_taken_name_is_refused_with_422(github, admin):
    """Creating a repository whose name the organization already uses is a validation failure
    (422, "name already exists on this account"):
    https://docs.github.com/en/rest/repos/repos#create-an-organization-repository."""
    client = installation(github)
    assert create(client, auto_init=True).status_code == 201

    again = create(client, auto_init=True)

    assert again.status_code == 422
    assert again.json()["errors"][0]["message"] == "name already exists on this account"


def test_files_pushed_through_the_git_data_api_land_on_the_new_default_branch(github, admin):
    """Trees, commits and a fast-forward ref update, as on any repository:
    https://docs.github.com/en/rest/git/trees#create-a-tree,
    https://docs.github.com/en/rest/git/commits#create-a-commit and
    https://docs.github.com/en/rest/git/refs#update-a-reference."""
    client = installation(github)
    create(client, auto_init=True)
    sha, head = push(client, {"k8s/deploy.yaml": "kind: Deployment\n", WORKFLOW: "on: push\n"})

    moved = client.patch(f"{NEW}/git/refs/heads/main", json={"sha": sha})

    assert moved.status_code == 200 and moved.json()["object"]["sha"] == sha
    files = admin.git["acme/billing-api"].files("main")
    assert files[WORKFLOW] == "on: push\n" and "README.md" in files
    # Not a fast-forward any more: GitHub refuses to move the ref back without force.
    back = client.patch(f"{NEW}/git/refs/heads/main", json={"sha": head})
    assert back.status_code == 422


def test_a_workflow_file_in_the_new_repository_needs_the_workflows_permission(github, admin):
    """The same rule as on the App's own repository:
    https://docs.github.com/en/rest/authentication/permissions-required-for-github-apps#repository-permissions-for-workflows."""
    github.granted.pop("workflows")
    client = installation(github)
    create(client, auto_init=True)
    sha, _ = push(client, {WORKFLOW: "on: push\n"})

    refused = client.patch(f"{NEW}/git/refs/heads/main", json={"sha": sha})

    assert refused.status_code == 422 and "without `workflows` permission" in refused.text


def test_a_branch_that_requires_reviews_takes_no_direct_push(github, admin):
    """With "Require a pull request before merging", all commits go to another branch and
    come in through a pull request, so a direct ref update is refused:
    https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-protected-branches/about-protected-branches."""
    client = installation(github)
    create(client, auto_init=True)
    protection = {
        "required_status_checks": None,
        "enforce_admins": True,
        "required_pull_request_reviews": {"required_approving_review_count": 1},
        "restrictions": None,
    }
    put = client.put(f"{NEW}/branches/main/protection", json=protection)
    assert put.status_code == 200
    sha, head = push(client, {"notes.md": "x\n"})

    refused = client.patch(f"{NEW}/git/refs/heads/main", json={"sha": sha})

    assert refused.status_code == 422
    assert refused.json()["message"] == "Protected branch update failed for refs/heads/main."
    assert admin.git["acme/billing-api"].refs["main"] == head


def test_git_data_of_a_repository_that_does_not_exist_is_404(github, admin):
    """https://docs.github.com/en/rest/git/refs#get-a-reference: 404 for what the token
    cannot see."""
    client = installation(github)

    assert client.get(f"{NEW}/git/ref/heads/main").status_code == 404
    assert client.get(f"{NEW}/contents/README.md").status_code == 404
