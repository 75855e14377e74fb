"""Repository administration on top of a `FakeGitHub`: the App's installation per account
(looked up with the App's JWT), repositories created in an organization or generated from a
template repository, and branch protection. Bodies are shaped like GitHub's, complete enough
for githubkit's response validation; requests land in the FakeGitHub's `calls` and obey its
`fail(...)` faults.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx
import respx

from app.github.permissions import REPO_CREATION
from tests.fake_github import FakeGitHub
from tests.fake_repo_git import RepoGit, install_repo_git
from tests.github_api import HOME, INSTALLATION_ID, WHEN, Where, error, repository, user
from tests.github_rules import read, write

DOCS = "https://docs.github.com/rest"
APP_SLUG = "idp-copilot"


def installation(
    installation_id: int, account: str, *, type: str = "Organization", at: Where = HOME
) -> dict:
    """GET /orgs/{org}/installation or /users/{user}/installation."""
    return {
        "id": installation_id,
        "account": user(account, id=installation_id + 1, type=type, at=at),
        "repository_selection": "all",
        "access_tokens_url": f"{at.api}/app/installations/{installation_id}/access_tokens",
        "repositories_url": f"{at.api}/installation/repositories",
        "html_url": f"{at.web}/organizations/{account}/settings/installations/{installation_id}",
        "app_id": 12345,
        "target_id": installation_id + 1,
        "target_type": type,
        "permissions": {"administration": "write", "contents": "write", "issues": "write"},
        "events": ["issues", "issue_comment", "pull_request"],
        "created_at": WHEN,
        "updated_at": WHEN,
        "single_file_name": None,
        "app_slug": APP_SLUG,
        "suspended_by": None,
        "suspended_at": None,
    }


def protected_branch(body: dict[str, Any], branch: str, *, at: Where = HOME) -> dict:
    """PUT …/branches/{branch}/protection: the protection as GitHub answers it, from the
    request body (GitHub fills `contexts` from `checks` and the other way round)."""
    url = f"{at.url}/branches/{branch}/protection"
    answer: dict[str, Any] = {
        "url": url,
        "required_signatures": {"url": f"{url}/required_signatures", "enabled": False},
        "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": bool(body["enforce_admins"])},
    }
    for flag in (
        "required_linear_history",
        "allow_force_pushes",
        "allow_deletions",
        "block_creations",
        "required_conversation_resolution",
        "lock_branch",
        "allow_fork_syncing",
    ):
        answer[flag] = {"enabled": bool(body.get(flag, False))}
    if body.get("restrictions") is not None:
        answer["restrictions"] = restrictions(body["restrictions"], url)
    checks = body.get("required_status_checks")
    if checks is not None:
        names = [c["context"] for c in checks.get("checks", [])] or checks.get("contexts", [])
        answer["required_status_checks"] = {
            "url": f"{url}/required_status_checks",
            "strict": checks["strict"],
            "contexts": names,
            "contexts_url": f"{url}/required_status_checks/contexts",
            "checks": [{"context": n, "app_id": None} for n in names],
        }
    reviews = body.get("required_pull_request_reviews")
    if reviews is not None:
        answer["required_pull_request_reviews"] = {
            "url": f"{url}/required_pull_request_reviews",
            "dismiss_stale_reviews": reviews.get("dismiss_stale_reviews", False),
            "require_code_owner_reviews": reviews.get("require_code_owner_reviews", False),
            "required_approving_review_count": reviews.get("required_approving_review_count", 1),
            "require_last_push_approval": reviews.get("require_last_push_approval", False),
        }
        if reviews.get("dismissal_restrictions"):
            answer["required_pull_request_reviews"]["dismissal_restrictions"] = restrictions(
                reviews["dismissal_restrictions"], f"{url}/dismissal_restrictions"
            )
    return answer


def restrictions(asked: dict[str, list[str]], url: str) -> dict[str, Any]:
    """Who may push (or dismiss reviews) as GitHub answers it: users, teams and apps as
    objects, where the PUT body names them by login and slug."""
    return {
        "url": url,
        "users_url": f"{url}/users",
        "teams_url": f"{url}/teams",
        "apps_url": f"{url}/apps",
        "users": [user(login) for login in asked.get("users", [])],
        "teams": [{"id": 1, "slug": slug, "name": slug} for slug in asked.get("teams", [])],
        "apps": [{"id": 2, "slug": slug, "name": slug} for slug in asked.get("apps", [])],
    }


def _is_jwt(request: httpx.Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and token.count(".") == 2


class FakeRepoAdmin:
    """Accounts, their repositories and branch protection, beside `github`'s own repository.

    `accounts` maps a login to (type, installation id): "Organization" or "User". By default
    the FakeGitHub's owner is an organization with the suite's installation.
    """

    def __init__(self, github: FakeGitHub, router: respx.MockRouter) -> None:
        self.github = github
        home = github.at
        self.accounts: dict[str, tuple[str, int]] = {home.owner: ("Organization", INSTALLATION_ID)}
        # full name → what GitHub keeps about the repository and its branches
        self.repos: dict[str, dict[str, Any]] = {}
        # shared with FakeGitHub, which answers for its own repository's branches
        self.protection: dict[tuple[str, str], dict[str, Any]] = github.protection
        # full name → the git data of a repository created with a README (auto_init)
        self.git: dict[str, RepoGit] = {}
        self._ids = itertools.count(600)
        # An App that creates repositories asks for administration too (README, "Install").
        github.granted.update(REPO_CREATION)
        self._install(router)

    # -- what a test sets up ----------------------------------------------------------------

    def add_account(self, login: str, installation_id: int, *, type: str = "Organization"):
        self.accounts[login] = (type, installation_id)

    def add_repo(
        self,
        full_name: str,
        *,
        private: bool = True,
        is_template: bool = False,
        default_branch: str = "main",
        description: str | None = None,
    ) -> dict[str, Any]:
        """A repository that exists on GitHub (not created by the App)."""
        entry = {
            "id": next(self._ids),
            "private": private,
            "is_template": is_template,
            "default_branch": default_branch,
            "description": description,
            "branches": {default_branch},
            "template": None,
        }
        self.repos[full_name] = entry
        return entry

    def body(self, full_name: str) -> dict[str, Any]:
        """The repository as GET /repos/{owner}/{repo} describes it."""
        owner, _, name = full_name.partition("/")
        entry = self.repos[full_name]
        at = Where(api=self.github.at.api, owner=owner, name=name)
        kind = self.accounts.get(owner, ("Organization", 0))[0]
        data = repository(default_branch=entry["default_branch"], at=at)
        data |= {
            "id": entry["id"],
            "node_id": f"R_{entry['id']}",
            "owner": user(owner, id=entry["id"] + 10_000, type=kind, at=at),
            "private": entry["private"],
            "visibility": "private" if entry["private"] else "public",
            "description": entry["description"],
            "is_template": entry["is_template"],
        }
        return data

    # -- routing ----------------------------------------------------------------------------

    def _install(self, router: respx.MockRouter) -> None:
        url = httpx.URL(self.github.at.api)
        prefix = url.path.rstrip("/")
        part = r"(?P<{}>[A-Za-z0-9._-]+)"
        owner, name, org = part.format("owner"), part.format("name"), part.format("org")
        admin = write("administration")
        routes = [
            ("GET", rf"/orgs/{org}/installation", self._org_installation, ()),
            ("GET", rf"/users/{part.format('login')}/installation", self._user_installation, ()),
            ("POST", rf"/orgs/{org}/repos", self._create_in_org, admin),
            ("POST", rf"/repos/{owner}/{name}/generate", self._generate, admin),
            (
                "PUT",
                rf"/repos/{owner}/{name}/branches/(?P<branch>.+)/protection",
                self._protect,
                admin,
            ),
            (
                "GET",
                rf"/repos/{owner}/{name}/branches/(?P<branch>.+)/protection",
                self._get_protection,
                read("administration"),
            ),
            ("GET", rf"/repos/{owner}/{name}", self._get_repo, read("metadata")),
        ]
        for method, pattern, handler, needs in routes:
            route = router.route(
                method=method, host=url.host, path__regex=f"^{re.escape(prefix)}{pattern}$"
            )
            dispatch = self.github._dispatcher(handler, prefix, needs=needs, home=False)
            route.mock(side_effect=dispatch)
        install_repo_git(router, self.github, self.git)

    @staticmethod
    def _answer(data: Any, status: int = 200) -> httpx.Response:
        return httpx.Response(status, json=data)

    def _not_found(self) -> httpx.Response:
        return self._answer(error("Not Found", 404), 404)

    def _installation(self, request: httpx.Request, login: str, kind: str) -> httpx.Response:
        if not _is_jwt(request):
            message = "A JSON web token could not be decoded"
            return self._answer(error(message, 401), 401)
        found = self.accounts.get(login)
        if found is None or found[0] != kind:
            return self._not_found()
        return self._answer(installation(found[1], login, type=kind, at=self.github.at))

    def _org_installation(self, request: httpx.Request, body: Any, org: str) -> httpx.Response:
        return self._installation(request, org, "Organization")

    def _user_installation(self, request: httpx.Request, body: Any, login: str) -> httpx.Response:
        return self._installation(request, login, "User")

    def _exists(self, full_name: str) -> bool:
        home = self.github.at
        return full_name in self.repos or full_name == f"{home.owner}/{home.name}"

    def _get_repo(self, request: httpx.Request, body: Any, owner: str, name: str):
        full_name = f"{owner}/{name}"
        return self._answer(self.body(full_name)) if full_name in self.repos else self._not_found()

    def _refuse_jwt(self, request: httpx.Request) -> httpx.Response | None:
        if _is_jwt(request):  # only an installation may create repositories
            return self._answer(error("Resource not accessible by integration", 403), 403)
        return None

    def _name_taken(self) -> httpx.Response:
        return self._answer(
            {
                "message": "Repository creation failed.",
                "errors": [
                    {
                        "resource": "Repository",
                        "code": "custom",
                        "field": "name",
                        "message": "name already exists on this account",
                    }
                ],
                "documentation_url": f"{DOCS}/repos/repos#create-an-organization-repository",
                "status": "422",
            },
            422,
        )

    def _create_in_org(self, request: httpx.Request, body: Any, org: str) -> httpx.Response:
        if (refused := self._refuse_jwt(request)) is not None:
            return refused
        if self.accounts.get(org, ("", 0))[0] != "Organization":
            return self._not_found()
        full_name = f"{org}/{body['name']}"
        if self._exists(full_name):
            return self._name_taken()
        entry = self.add_repo(full_name, private=body.get("private", False))
        entry["description"] = body.get("description") or None
        if not body.get("auto_init"):
            entry["branches"] = set()  # an empty repository has no branch yet
        else:  # GitHub commits a README on the default branch
            at = Where(api=self.github.at.api, owner=org, name=body["name"])
            store = self.git[full_name] = RepoGit(self.github, at, entry["default_branch"])
            store.push(
                entry["default_branch"], {"README.md": f"# {body['name']}\n"}, "Initial commit"
            )
        return self._answer(self.body(full_name), 201)

    def _generate(self, request: httpx.Request, body: Any, owner: str, name: str):
        if (refused := self._refuse_jwt(request)) is not None:
            return refused
        template = self.repos.get(f"{owner}/{name}")
        if template is None or not template["is_template"]:
            return self._not_found()
        full_name = f"{body.get('owner', owner)}/{body['name']}"
        if self._exists(full_name):
            return self._name_taken()
        entry = self.add_repo(
            full_name,
            private=body.get("private", False),
            default_branch=template["default_branch"],
            description=body.get("description") or None,
        )
        entry["template"] = f"{owner}/{name}"
        return self._answer(self.body(full_name), 201)

    def _get_protection(
        self, request: httpx.Request, body: Any, owner: str, name: str, branch: str
    ) -> httpx.Response:
        """GET …/branches/{branch}/protection: the protection, or 404 "Branch not protected"
        (https://docs.github.com/rest/branches/branch-protection#get-branch-protection)."""
        full_name = f"{owner}/{name}"
        if not self._exists(full_name):
            return self._not_found()
        found = self.protection.get((full_name, branch))
        if found is None:
            return self._answer(error("Branch not protected", 404), 404)
        at = Where(api=self.github.at.api, owner=owner, name=name)
        return self._answer(protected_branch(found, branch, at=at))

    def _protect(self, request: httpx.Request, body: Any, owner: str, name: str, branch: str):
        full_name = f"{owner}/{name}"
        home = self.github.at
        if full_name == f"{home.owner}/{home.name}":
            branches = set(self.github.refs)
        elif full_name in self.git:
            branches = set(self.git[full_name].refs)
        elif full_name in self.repos:
            branches = self.repos[full_name]["branches"]
        else:
            return self._not_found()
        if branch not in branches:
            return self._answer(error("Branch not found", 404), 404)
        checks = body.get("required_status_checks") or {}
        if "contexts" in checks and "checks" in checks:
            message = (
                'Invalid request.\n\nNo subschema in "anyOf" matched.\n'
                'More than one subschema in "oneOf" matched.'
            )
            return self._answer({"message": message, "documentation_url": DOCS}, 422)
        self.protection[(full_name, branch)] = body
        if full_name in self.git:
            self.git[full_name].protection[branch] = body
        at = Where(api=home.api, owner=owner, name=name)
        return self._answer(protected_branch(body, branch, at=at))
