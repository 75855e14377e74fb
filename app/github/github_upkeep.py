"""What upkeep needs of GitHub for `GitHubForge`: the tree of a branch, a pull request's
state, the dashboard issue (found again by its marker, like the todo comment) and pinning it.

Pinning exists only in GitHub's GraphQL API (the `pinIssue` mutation,
docs.github.com/en/graphql/reference/mutations#pinissue); it takes the issue's node id,
which the REST answers carry.
"""

from __future__ import annotations

from typing import Any

from githubkit.exception import GraphQLFailed, RequestFailed

from app.github.errors import ForgeError
from app.github.forge import RepoRef, validate_branch
from app.github.github_client import GitHubClient

MAX_TREE_ENTRIES = 100_000  # GitHub truncates a recursive tree past this many entries
PIN_ISSUE = """
mutation($issueId: ID!) {
  pinIssue(input: {issueId: $issueId}) { issue { number isPinned } }
}
"""


class GitHubUpkeep(GitHubClient):
    """`list_files`, `pull_request_state`, `upsert_issue` and `pin_issue` of the Forge
    protocol; part of `GitHubForge`."""

    async def list_files(self, repo: RepoRef, ref: str) -> list[str]:
        validate_branch(ref)
        async with self._errors(f"listing the files of {ref}", repo):
            resp = await self._rest(repo).git.async_get_tree(
                repo.owner, repo.name, ref, recursive="1"
            )
        return sorted(e.path for e in resp.parsed_data.tree if e.type == "blob" and e.path)

    async def upsert_issue(
        self, repo: RepoRef, number: int | None, title: str, body: str, marker: str
    ) -> int:
        rest = self._rest(repo)
        async with self._errors("updating the dashboard issue", repo):
            found = await self._open_issue(repo, number) if number is not None else None
            if found is None:
                found = await self._find_issue(repo, marker)
            if found is None:
                self._count("create_issue")
                created = await rest.issues.async_create(
                    repo.owner, repo.name, title=title, body=body
                )
                return created.parsed_data.number
            if found.body != body or found.title != title:
                self._count("update_issue")
                await rest.issues.async_update(
                    repo.owner, repo.name, found.number, title=title, body=body
                )
            return found.number

    async def _open_issue(self, repo: RepoRef, number: int) -> Any | None:
        try:
            resp = await self._rest(repo).issues.async_get(repo.owner, repo.name, number)
        except RequestFailed as exc:
            if exc.response.status_code in (404, 410):  # deleted or transferred
                return None
            raise
        issue = resp.parsed_data
        return issue if issue.state == "open" and not _is_pull(issue) else None

    async def _find_issue(self, repo: RepoRef, marker: str) -> Any | None:
        """The oldest open issue by a Bot (the App) whose body holds `marker`."""
        pages = self._pages(
            repo,
            self._rest(repo).issues.async_list_for_repo,
            state="open",
            sort="created",
            direction="asc",
        )
        async for issue in pages:
            user = issue.user
            if (
                not _is_pull(issue)
                and user is not None
                and user.type == "Bot"
                and marker in (issue.body or "")
            ):
                return issue
        return None

    async def pin_issue(self, repo: RepoRef, number: int) -> None:
        async with self._errors(f"pinning issue #{number}", repo):
            resp = await self._rest(repo).issues.async_get(repo.owner, repo.name, number)
            self._count("pin_issue")
            try:
                await self._client(repo).async_graphql(
                    PIN_ISSUE, {"issueId": resp.parsed_data.node_id}
                )
            except GraphQLFailed as exc:
                errors = exc.response.errors or []
                message = errors[0].message if errors else str(exc)
                raise ForgeError(f"GitHub did not pin issue #{number}: {message}") from None


def _is_pull(issue: Any) -> bool:
    """A pull request's issue side (githubkit leaves an absent `pull_request` UNSET)."""
    return bool(getattr(issue, "pull_request", None))
