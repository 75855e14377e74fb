"""`FakeGitHub`: a stateful GitHub for one repository on respx, that refuses what GitHub
refuses (tests/github_rules.py) and answers with the bodies of tests/github_api.py.

The App's installation grants `granted` (default: what github-app.yml asks for); each token
minted keeps the grants of its moment, as GitHub's do. Its contract tests are
tests/test_github_standin_contract.py.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import httpx
import respx

from tests import github_rules as rules
from tests.fake_github_actions import FakeActions
from tests.fake_github_checks import FakeChecks
from tests.fake_github_git import FakeGitData
from tests.fake_github_issues import FakeIssues
from tests.fake_github_reviews import FakeReviews
from tests.github_api import (
    HOME,
    Where,
    app_user,
    check_run,
    collaborator_permission,
    installation_token,
    issue_comment,
    label,
    manifest_permissions,
    pull_request,
    reaction,
    repository,
)
from tests.github_rules import read, write

ISSUES_READ = read("issues", "pull_requests")  # issue comments on a PR: either permission
ISSUES_WRITE = write("issues", "pull_requests")


class FakeGitHub(FakeGitData, FakeReviews, FakeActions, FakeChecks, FakeIssues):
    """GitHub for one repository on a respx router: comments, git objects, branches, pull
    requests, permissions, checks and labels in dicts; every request in `calls`.

    `granted` is what the App's installation grants (tokens minted afterwards carry it);
    `visible` False plays a repository removed from the installation (404 everywhere).
    `fail(method, path_regex, *outcomes)` makes the next matching requests answer with the
    given responses, raise the given exceptions, or call the given hooks (request → response,
    or None to serve it normally after the hook changed the state).
    """

    def __init__(
        self,
        router: respx.MockRouter,
        *,
        at: Where = HOME,
        default_branch: str = "main",
        granted: dict[str, str] | None = None,
    ) -> None:
        self.at, self.default_branch = at, default_branch
        self.granted = manifest_permissions() if granted is None else dict(granted)
        self.visible = True
        self.token_requests = 0
        self.tokens: dict[str, dict[str, str]] = {}  # token → the grants it carries
        self.next_tokens: list[str] = []  # token values to mint next (else ghs_fakeNNNN)
        self.calls: list[tuple[str, str, Any]] = []
        self.faults: list[tuple[str, re.Pattern[str], Any]] = []
        self.comments: dict[int, dict[str, Any]] = {}
        self.reactions: list[tuple[int, str]] = []  # the App's, as created
        self.reaction_log: list[dict[str, Any]] = []  # everyone's, for GET …/reactions
        self.trees: dict[str, dict[str, tuple[str, str]]] = {}
        self.blobs: dict[str, str] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.permissions: dict[str, tuple[str, str]] = {}
        self.check_runs: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        # (full name, branch) → protection as PUT; shared with FakeRepoAdmin
        self.protection: dict[tuple[str, str], dict[str, Any]] = {}
        self.labels: dict[int, list[str]] = {}
        self.repo_files: dict[str, dict[str, str]] = {}  # other repositories the App can read
        # Repositories created through the fake with git data of their own (tests/fake_repo_git.py)
        self.repo_git: dict[str, Any] = {}
        self.reviews: dict[int, dict[str, Any]] = {}
        self.review_comments: dict[int, dict[str, Any]] = {}
        self.issues: dict[int, dict[str, Any]] = {}
        self.pinned: list[int] = []
        self._ids = itertools.count(1000)
        self._init_actions()
        self.push(default_branch, {"README.md": f"# {at.name}\n"}, "Initial commit")
        self._install(router)

    # -- what a test does or looks at -------------------------------------------------------

    def add_comment(
        self, number: int, body: str, author: dict | None = None, comment_id: int | None = None
    ) -> int:
        """A comment by `author` (default: the App's bot); returns its id (`comment_id`: the
        one a webhook payload named)."""
        comment_id = next(self._ids) if comment_id is None else comment_id
        self.comments[comment_id] = {"number": number, "body": body, "author": author}
        return comment_id

    def react(self, comment_id: int, content: str, author: dict | None) -> int:
        """A person's reaction on a comment (`author` None: a deleted account); its id."""
        reaction_id = next(self._ids)
        self.reaction_log.append(
            {"id": reaction_id, "comment_id": comment_id, "content": content, "user": author}
        )
        return reaction_id

    def writes(self) -> list[tuple[str, str]]:
        """Every write request (method, path), the installation-token request aside."""
        return [(m, p) for m, p, _ in self.calls if m != "GET" and "/access_tokens" not in p]

    def fail(self, method: str, path_regex: str, *outcomes: Any) -> None:
        self.faults += [(method, re.compile(path_regex), outcome) for outcome in outcomes]

    # -- routing and GitHub's gate ----------------------------------------------------------

    def _install(self, router: respx.MockRouter) -> None:
        url = httpx.URL(self.at.api)
        prefix = re.escape(url.path.rstrip("/"))
        repo = rf"/repos/{re.escape(self.at.owner)}/{re.escape(self.at.name)}"
        contents_read, contents_write = read("contents"), write("contents")
        routes = [
            ("GET", repo, self._repository, read("metadata")),
            ("GET", repo + r"/issues/(?P<number>\d+)/comments", self._list_comments, ISSUES_READ),
            (
                "POST",
                repo + r"/issues/(?P<number>\d+)/comments",
                self._create_comment,
                ISSUES_WRITE,
            ),
            (
                "PATCH",
                repo + r"/issues/comments/(?P<comment_id>\d+)",
                self._update_comment,
                ISSUES_WRITE,
            ),
            (
                "POST",
                repo + r"/issues/comments/(?P<comment_id>\d+)/reactions",
                self._react,
                ISSUES_WRITE,
            ),
            (
                "GET",
                repo + r"/issues/comments/(?P<comment_id>\d+)/reactions",
                self._reactions,
                ISSUES_READ,
            ),
            ("POST", repo + r"/issues/(?P<number>\d+)/labels", self._add_labels, ISSUES_WRITE),
            ("GET", repo + r"/contents/(?P<path>.+)", self._contents, contents_read),
            ("GET", repo + r"/git/ref/heads/(?P<branch>.+)", self._get_ref, contents_read),
            ("GET", repo + r"/git/commits/(?P<sha>\w+)", self._get_commit, contents_read),
            ("GET", repo + r"/git/trees/(?P<sha>\w+)", self._get_tree, contents_read),
            ("GET", repo + r"/git/blobs/(?P<sha>\w+)", self._get_blob, contents_read),
            ("POST", repo + r"/git/trees", self._create_tree, contents_write),
            ("POST", repo + r"/git/commits", self._create_commit, contents_write),
            ("PATCH", repo + r"/git/refs/heads/(?P<branch>.+)", self._update_ref, contents_write),
            ("POST", repo + r"/git/refs", self._create_ref, contents_write),
            ("GET", repo + r"/pulls", self._list_pulls, read("pull_requests")),
            ("POST", repo + r"/pulls", self._create_pull, write("pull_requests")),
            (
                "PATCH",
                repo + r"/pulls/(?P<number>\d+)",
                self._update_pull,
                write("pull_requests"),
            ),
            (
                "GET",
                repo + r"/collaborators/(?P<login>[^/]+)/permission",
                self._permission,
                read("metadata"),
            ),
            ("POST", repo + r"/check-runs", self._create_check_run, write("checks")),
            (
                "GET",
                repo + r"/pulls/(?P<number>\d+)/reviews",
                self._list_reviews,
                read("pull_requests"),
            ),
            (
                "GET",
                repo + r"/pulls/(?P<number>\d+)/reviews/(?P<review_id>\d+)",
                self._review,
                read("pull_requests"),
            ),
            (
                "GET",
                repo + r"/pulls/(?P<number>\d+)/reviews/(?P<review_id>\d+)/comments",
                self._review_comments,
                read("pull_requests"),
            ),
            (
                "POST",
                repo + r"/pulls/(?P<number>\d+)/comments/(?P<comment_id>\d+)/replies",
                self._reply_to_review_comment,
                write("pull_requests"),
            ),
            *self._check_routes(repo),
        ]
        routes += self._actions_routes(repo)
        self._install_log_host(router)
        # After the home repository's routes: other repositories' files (respx tries in order).
        other = r"/repos/(?P<owner>[A-Za-z0-9-]+)/(?P<name>[A-Za-z0-9._-]+)/contents/(?P<path>.+)"
        routes.append(("GET", other, self._other_contents, contents_read))
        routes += self.issue_routes(repo)
        routes.append(("POST", r"/graphql", self.graphql, ()))
        base = url.path.rstrip("/")
        tokens = rf"^{prefix}/app/installations/\d+/access_tokens$"
        token = router.route(method="POST", host=url.host, path__regex=tokens)
        token.mock(side_effect=self._dispatcher(self._token, base, home=False))
        for method, pattern, handler, needs in routes:
            route = router.route(method=method, host=url.host, path__regex=f"^{prefix}{pattern}$")
            route.mock(side_effect=self._dispatcher(handler, base, needs=needs))

    def _dispatcher(
        self, handler: Any, prefix: str, *, needs: rules.Needs = (), home: bool = True
    ) -> Any:
        """The request as GitHub takes it: recorded, then any injected fault, then the gate
        (`needs`: the permission sets the endpoint accepts; `home`: on this repository)."""

        def dispatch(request: httpx.Request, **params: str) -> httpx.Response:
            path = request.url.path.removeprefix(prefix)
            body = json.loads(request.content) if request.content else None
            self.calls.append((request.method, path, body))
            for index, (method, pattern, outcome) in enumerate(self.faults):
                if method == request.method and pattern.search(path):
                    del self.faults[index]
                    if isinstance(outcome, BaseException):
                        raise outcome
                    if callable(outcome):  # a hook: may change state; None serves normally
                        outcome = outcome(request)
                    if outcome is not None:
                        return outcome
                    break
            refused = self._gate(request, needs, home)
            return refused if refused is not None else handler(request, body, **params)

        return dispatch

    def _gate(self, request: httpx.Request, needs: rules.Needs, home: bool) -> Any:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.count(".") == 2:
            return None  # the App's JWT: the App's own endpoints decide
        if scheme.lower() != "token":
            return rules.not_found() if home else rules.bad_credentials()
        granted = self.tokens.get(token)
        if granted is None:
            return rules.bad_credentials()
        if home and not self.visible:
            return rules.not_found()
        if needs and not rules.allows(granted, needs):
            return rules.not_accessible(needs)
        return None

    def _grants(self, request: httpx.Request) -> dict[str, str]:
        token = request.headers.get("authorization", "").partition(" ")[2]
        return self.tokens.get(token, {})

    @staticmethod
    def _ok(data: Any, status: int = 200, headers: dict | None = None) -> httpx.Response:
        return rules.answer(data, status, headers)

    def _fail(self, message: str = "Not Found", status: int = 404) -> httpx.Response:
        return self._ok(rules.error_body(message, status, rules.DOCS), status)

    # -- handlers: (request, json body, path params) → response -----------------------------

    def _token(self, request: httpx.Request, body: Any) -> httpx.Response:
        self.token_requests += 1
        token = self.next_tokens.pop(0) if self.next_tokens else None
        token = token or f"ghs_fake{self.token_requests:04d}"
        self.tokens[token] = dict(self.granted)
        selection = "all" if self.visible else "selected"
        minted = installation_token(token, permissions=self.granted, repository_selection=selection)
        return self._ok(minted, 201)

    def _repository(self, request: httpx.Request, body: Any) -> httpx.Response:
        return self._ok(repository(default_branch=self.default_branch, at=self.at))

    def _comment(self, comment_id: int) -> dict:
        c = self.comments[comment_id]
        return issue_comment(
            comment_id, c["body"], number=c["number"], author=c["author"], at=self.at
        )

    def _list_comments(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        ids = sorted(i for i, c in self.comments.items() if c["number"] == int(number))
        chunk, headers = rules.page(request, ids, f"{self.at.url}/issues/{number}/comments")
        return self._ok([self._comment(i) for i in chunk], headers=headers)

    def _create_comment(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        comment_id = self.add_comment(int(number), body["body"], app_user(self.at))
        return self._ok(self._comment(comment_id), 201)

    def _update_comment(self, request: httpx.Request, body: Any, comment_id: str) -> httpx.Response:
        if int(comment_id) not in self.comments:
            return self._fail()
        self.comments[int(comment_id)]["body"] = body["body"]
        return self._ok(self._comment(int(comment_id)))

    def _react(self, request: httpx.Request, body: Any, comment_id: str) -> httpx.Response:
        """201 for a new reaction; 200 with the existing one when the caller (the App's bot)
        already reacted so: https://docs.github.com/en/rest/reactions/reactions#create-
        reaction-for-an-issue-comment."""
        if int(comment_id) not in self.comments:
            return rules.not_found()
        content, bot = body["content"], app_user(self.at)
        for r in self.reaction_log:
            if r["comment_id"] == int(comment_id) and r["content"] == content and r["user"] == bot:
                return self._ok(reaction(r["id"], content, at=self.at))
        self.reactions.append((int(comment_id), content))
        reaction_id = self.react(int(comment_id), content, bot)
        return self._ok(reaction(reaction_id, content, at=self.at), 201)

    def _reactions(self, request: httpx.Request, body: Any, comment_id: str) -> httpx.Response:
        if int(comment_id) not in self.comments:
            return rules.not_found()
        wanted = request.url.params.get("content")
        found = [
            r
            for r in self.reaction_log
            if r["comment_id"] == int(comment_id) and wanted in (None, r["content"])
        ]
        url = f"{self.at.url}/issues/comments/{comment_id}/reactions"
        chunk, headers = rules.page(request, found, url)
        # A deleted account's reaction keeps `"user": null`, as GitHub sends it.
        bodies = [{**reaction(r["id"], r["content"], at=self.at), "user": r["user"]} for r in chunk]
        return self._ok(bodies, headers=headers)

    def _add_labels(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        names = self.labels.setdefault(int(number), [])
        names += [n for n in body["labels"] if n not in names]
        return self._ok([label(i, n, at=self.at) for i, n in enumerate(names, 1)])

    def _pull(self, number: int) -> dict:
        p = self.pulls[number]
        merged = p.get("merged", False)
        return {
            **self._pull_body(number),
            "state": p["state"],
            "merged": merged,
            "merged_at": "2026-01-02T00:00:00Z" if merged else None,
        }

    def _pull_body(self, number: int) -> dict:
        p = self.pulls[number]
        return pull_request(
            number,
            p["branch"],
            self.refs[p["branch"]],
            title=p["title"],
            body=p["body"],
            base=p["base"],
            draft=p["draft"],
            at=self.at,
        )

    def _list_pulls(self, request: httpx.Request, body: Any) -> httpx.Response:
        head, state = request.url.params.get("head"), request.url.params.get("state", "open")
        found = [
            number
            for number, p in sorted(self.pulls.items())
            if head in (None, f"{self.at.owner}:{p['branch']}") and state in ("all", p["state"])
        ]
        chunk, headers = rules.page(request, found, f"{self.at.url}/pulls")
        return self._ok([self._pull(number) for number in chunk], headers=headers)

    def _create_pull(self, request: httpx.Request, body: Any) -> httpx.Response:
        branch = body["head"]
        if branch not in self.refs:
            return self._fail("Validation Failed", 422)
        if any(p["branch"] == branch and p["state"] == "open" for p in self.pulls.values()):
            return self._fail(f"A pull request already exists for {self.at.owner}:{branch}.", 422)
        number = next(self._ids)
        self.pulls[number] = {
            "branch": branch,
            "title": body["title"],
            "body": body.get("body"),
            "base": body["base"],
            "draft": body.get("draft", False),
            "state": "open",
        }
        return self._ok(self._pull(number), 201)

    def _update_pull(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        if int(number) not in self.pulls:
            return self._fail()
        self.pulls[int(number)].update(
            {k: body[k] for k in ("title", "body", "state") if k in body}
        )
        return self._ok(self._pull(int(number)))

    def _permission(self, request: httpx.Request, body: Any, login: str) -> httpx.Response:
        if login not in self.permissions:
            return self._fail()
        permission, role = self.permissions[login]
        return self._ok(collaborator_permission(login, permission, role, at=self.at))

    def _create_check_run(self, request: httpx.Request, body: Any) -> httpx.Response:
        check_id = next(self._ids)
        self.check_runs.append({"id": check_id, **body})
        out = body.get("output", {})
        run = check_run(
            check_id,
            body["head_sha"],
            body["name"],
            body["conclusion"],
            out.get("title", ""),
            out.get("summary", ""),
            at=self.at,
        )
        return self._ok(run, 201)
