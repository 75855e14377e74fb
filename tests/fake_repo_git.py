"""Git data of the repositories `FakeRepoAdmin` creates: each one its own blobs, trees,
commits and branches (`FakeGitData`, the same code as the FakeGitHub's own repository), and
the one refusal a new repository's push meets there: a branch protected with required pull
request reviews takes no direct ref update.

GitHub's pages: https://docs.github.com/en/rest/git/refs#update-a-reference and "Require
pull request reviews before merging" (all commits go to another branch and come in through
a pull request): https://docs.github.com/en/repositories/configuring-branches-and-merges-in-
your-repository/managing-protected-branches/about-protected-branches.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import respx

from tests import github_rules as rules
from tests.fake_github_git import FakeGitData
from tests.github_api import Where
from tests.github_rules import read, write

if TYPE_CHECKING:
    from tests.fake_github import FakeGitHub

PROTECTED_DOC = (
    "https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/"
    "managing-protected-branches/about-protected-branches"
)


class RepoGit(FakeGitData):
    """One created repository's git objects and branches; grants come from `github`."""

    def __init__(self, github: FakeGitHub, at: Where, default_branch: str) -> None:
        self.github, self.at, self.default_branch = github, at, default_branch
        self.trees: dict[str, dict[str, tuple[str, str]]] = {}
        self.blobs: dict[str, str] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        self._ids = github._ids
        # Filled by FakeRepoAdmin: branch → the protection PUT's body, for the push refusal.
        self.protection: dict[str, dict[str, Any]] = {}

    def _grants(self, request: httpx.Request) -> dict[str, str]:
        return self.github._grants(request)

    @staticmethod
    def _ok(data: Any, status: int = 200, headers: dict | None = None) -> httpx.Response:
        return rules.answer(data, status, headers)

    def _fail(self, message: str = "Not Found", status: int = 404) -> httpx.Response:
        return self._ok(rules.error_body(message, status, rules.DOCS), status)

    def _update_ref(self, request: httpx.Request, body: Any, branch: str) -> httpx.Response:
        rules_of = self.protection.get(branch) or {}
        if rules_of.get("required_pull_request_reviews") is not None:
            message = f"Protected branch update failed for refs/heads/{branch}."
            return self._ok(rules.error_body(message, 422, PROTECTED_DOC), 422)
        return super()._update_ref(request, body, branch)


def install_repo_git(
    router: respx.MockRouter, github: FakeGitHub, stores: dict[str, RepoGit]
) -> None:
    """Route the git data and contents endpoints of every repository in `stores` (full name
    → its git). Added after the FakeGitHub's own routes, so its repository keeps them."""
    github.repo_git = stores  # the contents route for other repositories answers from these
    url = httpx.URL(github.at.api)
    prefix = url.path.rstrip("/")
    repo = r"/repos/(?P<owner>[A-Za-z0-9._-]+)/(?P<name>[A-Za-z0-9._-]+)"
    contents_read, contents_write = read("contents"), write("contents")
    routes = [
        ("GET", r"/contents/(?P<path>.+)", "_contents", contents_read),
        ("GET", r"/git/ref/heads/(?P<branch>.+)", "_get_ref", contents_read),
        ("GET", r"/git/commits/(?P<sha>\w+)", "_get_commit", contents_read),
        ("GET", r"/git/trees/(?P<sha>\w+)", "_get_tree", contents_read),
        ("GET", r"/git/blobs/(?P<sha>\w+)", "_get_blob", contents_read),
        ("POST", r"/git/trees", "_create_tree", contents_write),
        ("POST", r"/git/commits", "_create_commit", contents_write),
        ("PATCH", r"/git/refs/heads/(?P<branch>.+)", "_update_ref", contents_write),
        ("POST", r"/git/refs", "_create_ref", contents_write),
    ]
    for method, tail, handler, needs in routes:

        def serve(request: httpx.Request, body: Any, owner: str, name: str, _h=handler, **kw):
            store = stores.get(f"{owner}/{name}")
            if store is None:
                return rules.not_found()
            return getattr(store, _h)(request, body, **kw)

        route = router.route(
            method=method, host=url.host, path__regex=f"^{re.escape(prefix)}{repo}{tail}$"
        )
        route.mock(side_effect=github._dispatcher(serve, prefix, needs=needs, home=False))
