"""Issues, one pull request read, and GitHub's GraphQL `pinIssue` on `FakeGitHub`: what the
upkeep sweep's dashboard needs.

GitHub's pages: https://docs.github.com/en/rest/issues/issues (list, create, get, update an
issue; the list holds pull requests too), https://docs.github.com/en/rest/pulls/pulls#get-a-
pull-request, https://docs.github.com/en/graphql/reference/mutations#pinissue (the mutation;
REST has none) and https://docs.github.com/en/issues/tracking-your-work-with-issues/
administering-issues/pinning-an-issue-to-your-repository ("You can pin up to three issues").
GraphQL answers 200 with an `errors` list when a mutation is refused.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import httpx

from tests import github_rules as rules
from tests.github_api import Where, app_user, issue
from tests.github_rules import read, write

MAX_PINNED = 3


class FakeIssues:
    """The repository's issues (mixed into `FakeGitHub`); `pinned` in pinning order."""

    at: Where
    issues: dict[int, dict[str, Any]]
    pinned: list[int]
    pulls: dict[int, dict[str, Any]]
    refs: dict[str, str]
    _ids: itertools.count

    if TYPE_CHECKING:

        def _grants(self, request: httpx.Request) -> dict[str, str]: ...
        def _ok(self, data: Any, status: int = 200, headers: dict | None = None) -> Any: ...
        def _fail(self, message: str = "Not Found", status: int = 404) -> Any: ...
        def _pull(self, number: int) -> dict: ...

    def issue_routes(self, repo: str) -> list[tuple[str, str, Any, Any]]:
        issues_read, issues_write = read("issues"), write("issues")
        return [
            ("GET", repo + r"/issues", self._list_issues, issues_read),
            ("POST", repo + r"/issues", self._create_issue, issues_write),
            ("GET", repo + r"/issues/(?P<number>\d+)", self._get_issue, issues_read),
            ("PATCH", repo + r"/issues/(?P<number>\d+)", self._update_issue, issues_write),
            ("GET", repo + r"/pulls/(?P<number>\d+)", self._get_pull, read("pull_requests")),
        ]

    def open_issue(self, title: str, body: str, author: dict | None = None) -> int:
        """An issue someone opened (default: the App's bot); its number."""
        number = next(self._ids)
        self.issues[number] = {
            "title": title,
            "body": body,
            "state": "open",
            "author": author or app_user(self.at),
        }
        return number

    def merge(self, number: int) -> None:
        """Someone merged pull request `number` (its branch into the base)."""
        p = self.pulls[number]
        self.refs[p["base"]] = self.refs[p["branch"]]
        p.update(state="closed", merged=True)

    def _issue(self, number: int) -> dict:
        i = self.issues[number]
        body = issue(number, title=i["title"], body=i["body"], author=i["author"], at=self.at)
        return {**body, "state": i["state"]}

    def _list_issues(self, request: httpx.Request, body: Any) -> httpx.Response:
        state = request.url.params.get("state", "open")
        found = [n for n, i in sorted(self.issues.items()) if state in ("all", i["state"])]
        chunk, headers = rules.page(request, found, f"{self.at.url}/issues")
        return self._ok([self._issue(n) for n in chunk], headers=headers)

    def _create_issue(self, request: httpx.Request, body: Any) -> httpx.Response:
        if not body.get("title"):
            return self._fail("Validation Failed", 422)
        number = self.open_issue(body["title"], body.get("body") or "")
        return self._ok(self._issue(number), 201)

    def _get_issue(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        if int(number) not in self.issues:
            return self._fail()
        return self._ok(self._issue(int(number)))

    def _update_issue(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        if int(number) not in self.issues:
            return self._fail()
        self.issues[int(number)].update(
            {k: body[k] for k in ("title", "body", "state") if k in body}
        )
        return self._ok(self._issue(int(number)))

    def _get_pull(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        if int(number) not in self.pulls:
            return self._fail()
        return self._ok(self._pull(int(number)))

    # -- GraphQL ----------------------------------------------------------------------------

    def graphql(self, request: httpx.Request, body: Any) -> httpx.Response:
        """`pinIssue` only; anything else is a query this stand-in does not know."""
        query = (body or {}).get("query", "")
        if "pinIssue" not in query:
            return self._ok({"errors": [{"message": "this stand-in answers pinIssue only"}]})
        node = str((body.get("variables") or {}).get("issueId", ""))
        if not rules.allows(self._grants(request), write("issues")):
            return self._ok(_error("FORBIDDEN", "Resource not accessible by integration"))
        number = next((n for n in self.issues if f"I_{n}" == node), None)
        if number is None:
            return self._ok(
                _error("NOT_FOUND", f"Could not resolve to a node with the global id of '{node}'")
            )
        if number not in self.pinned:
            if len(self.pinned) >= MAX_PINNED:
                return self._ok(_error("UNPROCESSABLE", "Repository already has 3 pinned issues"))
            self.pinned.append(number)
        return self._ok({"data": {"pinIssue": {"issue": {"number": number, "isPinned": True}}}})


def _error(kind: str, message: str) -> dict:
    return {
        "data": {"pinIssue": None},
        "errors": [
            {
                "type": kind,
                "path": ["pinIssue"],
                "locations": [{"line": 3, "column": 3}],
                "message": message,
            }
        ],
    }
