"""What `/idp apply`'s requirements read on `FakeGitHub`: a pull request (with GitHub's lazy
`mergeable`), the check runs and combined status of a commit, and the home repository's
branch protection.

GitHub's pages: https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request,
https://docs.github.com/en/rest/checks/runs#list-check-runs-for-a-git-reference,
https://docs.github.com/en/rest/commits/statuses#get-the-combined-status-for-a-specific-reference
and https://docs.github.com/en/rest/branches/branch-protection#get-branch-protection.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

import httpx

from tests import github_rules as rules
from tests.github_api import WHEN, Where, check_run, repository, user
from tests.github_rules import read

SHA_RE = re.compile(r"[0-9a-f]{40}")
# The combined state GitHub reports: failure wins, then pending, then success.
_COMBINED = ("failure", "error", "pending")


class FakeChecks:
    """Pull request merge state, CI checks and statuses of the FakeGitHub (mixed into it).

    A pull request's `mergeable` is GitHub's: computed in the background after a change,
    null until then (`computing(number, reads)` makes the next `reads` GETs answer null, as
    GitHub does while its job runs). `add_check` and `add_status` play CI."""

    at: Where
    refs: dict[str, str]
    commits: dict[str, dict[str, Any]]
    pulls: dict[int, dict[str, Any]]
    check_runs: list[dict[str, Any]]
    statuses: list[dict[str, Any]]
    protection: dict[tuple[str, str], dict[str, Any]]
    _ids: itertools.count

    if TYPE_CHECKING:

        def _pull(self, number: int) -> dict: ...
        def _ok(self, data: Any, status: int = 200, headers: dict | None = None) -> Any: ...
        def _fail(self, message: str = "Not Found", status: int = 404) -> Any: ...

    # -- what a test sets up ----------------------------------------------------------------

    def set_mergeable(self, number: int, mergeable: bool | None, state: str) -> None:
        """GitHub's verdict on pull request `number` (`mergeable_state`: clean, dirty,
        blocked, behind, unstable, draft, unknown)."""
        self.pulls[number] |= {"mergeable": mergeable, "mergeable_state": state}

    def computing(self, number: int, reads: int = 1) -> None:
        self.pulls[number]["computing"] = reads

    def add_check(
        self, sha: str, name: str, status: str = "completed", conclusion: str | None = "success"
    ) -> int:
        """A check run another App (CI) created on `sha`; a newer one of a name wins."""
        check_id = next(self._ids)
        body = {"head_sha": sha, "name": name, "status": status, "conclusion": conclusion}
        self.check_runs.append({"id": check_id, **body})
        return check_id

    def add_status(self, sha: str, context: str, state: str) -> None:
        """A commit status (`state`: error, failure, pending or success) on `sha`."""
        self.statuses.append(
            {"id": next(self._ids), "sha": sha, "context": context, "state": state}
        )

    def require_checks(self, branch: str, contexts: list[str]) -> None:
        """Branch protection of the home repository's `branch` requiring these checks."""
        full_name = f"{self.at.owner}/{self.at.name}"
        self.protection[(full_name, branch)] = {
            "required_status_checks": {"strict": False, "contexts": contexts},
            "enforce_admins": False,
            "required_pull_request_reviews": None,
            "restrictions": None,
        }

    # -- routes and handlers ----------------------------------------------------------------

    def _check_routes(self, repo: str) -> list[tuple[str, str, Any, rules.Needs]]:
        return [
            ("GET", repo + r"/pulls/(?P<number>\d+)", self._get_pull, read("pull_requests")),
            (
                "GET",
                repo + r"/commits/(?P<ref>[^/]+)/check-runs",
                self._list_check_runs,
                read("checks"),
            ),
            ("GET", repo + r"/commits/(?P<ref>[^/]+)/status", self._combined, read("statuses")),
            (
                "GET",
                repo + r"/branches/(?P<branch>[^/]+)/protection",
                self._home_protection,
                read("administration"),
            ),
        ]

    def _get_pull(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        pull = self.pulls.get(int(number))
        if pull is None:
            return self._fail()
        data = self._pull(int(number))
        data["state"] = pull["state"]
        if pull.get("merged"):
            # GitHub no longer computes mergeability of a merged pull request.
            return self._ok(
                data | {"merged": True, "mergeable": None, "mergeable_state": "unknown"}
            )
        if pull.get("computing"):
            pull["computing"] -= 1
            return self._ok(data | {"mergeable": None, "mergeable_state": "unknown"})
        draft = pull.get("draft", False)
        state = "draft" if draft else pull.get("mergeable_state", "clean")
        return self._ok(data | {"mergeable": pull.get("mergeable", True), "mergeable_state": state})

    def _sha(self, ref: str) -> str | None:
        if SHA_RE.fullmatch(ref):
            return ref if ref in self.commits else None
        return self.refs.get(ref)

    def _list_check_runs(self, request: httpx.Request, body: Any, ref: str) -> httpx.Response:
        sha = self._sha(ref)
        if sha is None:
            return self._fail(f"No commit found for SHA: {ref}", 422)
        latest: dict[str, dict[str, Any]] = {}
        for run in self.check_runs:  # filter=latest (the default): the newest of each name
            if run["head_sha"] == sha:
                latest[run["name"]] = run
        runs = sorted(latest.values(), key=lambda r: r["id"], reverse=True)
        chunk, headers = rules.page(request, runs, f"{self.at.url}/commits/{ref}/check-runs")
        items = [self._check_run(r) for r in chunk]
        return self._ok({"total_count": len(runs), "check_runs": items}, headers=headers)

    def _check_run(self, run: dict[str, Any]) -> dict:
        out = run.get("output", {})
        conclusion = run.get("conclusion")
        data = check_run(
            run["id"],
            run["head_sha"],
            run["name"],
            conclusion or "success",
            out.get("title", ""),
            out.get("summary", ""),
            at=self.at,
        )
        status = run.get("status", "completed")
        done = status == "completed"
        return data | {
            "status": status,
            "conclusion": conclusion if done else None,
            "completed_at": WHEN if done else None,
        }

    def _combined(self, request: httpx.Request, body: Any, ref: str) -> httpx.Response:
        sha = self._sha(ref)
        if sha is None:
            return self._fail(f"No commit found for SHA: {ref}", 422)
        latest: dict[str, dict[str, Any]] = {}
        for status in self.statuses:
            if status["sha"] == sha:
                latest[status["context"]] = status
        states = {s["state"] for s in latest.values()}
        combined = next((s for s in _COMBINED if s in states), "success" if states else "pending")
        combined = "failure" if combined == "error" else combined
        url = f"{self.at.url}/commits/{sha}/status"
        items = [self._status(s, sha) for s in sorted(latest.values(), key=lambda s: -s["id"])]
        return self._ok(
            {
                "state": combined,
                "statuses": items,
                "sha": sha,
                "total_count": len(items),
                "repository": repository(at=self.at),
                "commit_url": f"{self.at.url}/commits/{sha}",
                "url": url,
            }
        )

    def _status(self, status: dict[str, Any], sha: str) -> dict:
        return {
            "url": f"{self.at.url}/statuses/{sha}",
            "avatar_url": None,
            "id": status["id"],
            "node_id": f"SC_{status['id']}",
            "state": status["state"],
            "description": None,
            "target_url": None,
            "context": status["context"],
            "created_at": WHEN,
            "updated_at": WHEN,
            "creator": user("ci-bot", id=42, at=self.at),
            "required": None,
        }

    def _home_protection(self, request: httpx.Request, body: Any, branch: str) -> httpx.Response:
        from tests.github_repos_api import protected_branch  # it imports this module's user

        found = self.protection.get((f"{self.at.owner}/{self.at.name}", branch))
        if found is None:
            return self._fail("Branch not protected", 404)
        return self._ok(protected_branch(found, branch, at=self.at))
