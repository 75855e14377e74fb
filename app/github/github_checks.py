"""What `/idp apply`'s requirements read on GitHub for `GitHubForge`: a pull request's
merge state, and the checks and statuses of a commit.

GitHub's pages: https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request (`mergeable`
is computed by a background job a read starts; null until it is done),
https://docs.github.com/en/rest/checks/runs#list-check-runs-for-a-git-reference and
https://docs.github.com/en/rest/commits/statuses#get-the-combined-status-for-a-specific-reference.
"""

from __future__ import annotations

from typing import Any

from githubkit.exception import RequestFailed

from app.github.forge import CommitCheck, PullRequestState, RepoRef
from app.github.github_client import GitHubClient

PER_PAGE = 100
MAX_PAGES = 5  # 500 checks on one commit is far past any real pipeline; the rest is not read


class GitHubChecks(GitHubClient):
    """`pull_request_state` and `commit_checks` of the Forge protocol; part of `GitHubForge`."""

    async def pull_request_state(self, repo: RepoRef, number: int) -> PullRequestState | None:
        """GET …/pulls/{n}; None on 404 (no such pull request)."""
        async with self._errors(f"reading pull request #{number}", repo):
            try:
                resp = await self._rest(repo).pulls.async_get(repo.owner, repo.name, number)
            except RequestFailed as exc:
                if exc.response.status_code == 404:
                    return None
                raise
            pr = resp.parsed_data
            return PullRequestState(
                number=pr.number,
                state=str(pr.state),
                merged=bool(pr.merged),
                draft=bool(_known(pr.draft)),
                mergeable=pr.mergeable,
                mergeable_state=str(pr.mergeable_state),
                head_sha=pr.head.sha,
                base_ref=pr.base.ref,
            )

    async def commit_checks(self, repo: RepoRef, sha: str) -> list[CommitCheck]:
        """GET …/commits/{sha}/check-runs (GitHub's default `filter=latest`: the newest run
        of each name) and …/commits/{sha}/status (the newest status of each context)."""
        rest = self._rest(repo)
        found: list[CommitCheck] = []
        async with self._errors(f"reading the checks of commit {sha[:12]}", repo):
            for page in range(1, MAX_PAGES + 1):
                resp = await rest.checks.async_list_for_ref(
                    repo.owner, repo.name, sha, per_page=PER_PAGE, page=page
                )
                runs = resp.parsed_data.check_runs
                found += [
                    CommitCheck(run.name, str(run.status), _text_or_none(run.conclusion))
                    for run in runs
                ]
                if len(runs) < PER_PAGE:
                    break
            resp = await rest.repos.async_get_combined_status_for_ref(
                repo.owner, repo.name, sha, per_page=PER_PAGE
            )
            for status in resp.parsed_data.statuses:
                state = str(status.state)
                done = state != "pending"
                found.append(
                    CommitCheck(
                        status.context, "completed" if done else "pending", state if done else None
                    )
                )
        return found


def _known(value: Any) -> Any:
    # githubkit marks absent fields with UNSET, which is truthy-unsafe.
    return value if isinstance(value, bool) else False


def _text_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, str) else None
