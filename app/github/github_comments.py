"""The App's conversation on GitHub for `GitHubForge`: the todo comment (found again by its
marker), plain comments, and reactions on issue comments.

Creating a comment is the one write GitHub does not make safe to repeat; the todo comment is
therefore always looked up by its marker before one is created.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from githubkit.exception import GitHubException, RequestFailed

from app.domain.todo import marker
from app.github.errors import ForgeError
from app.github.forge import REACTIONS, RepoRef
from app.github.github_client import GitHubClient

# How long an early lookup of the todo comment stands in for asking again.
PREFETCH_FRESH_S = 30.0


class GitHubComments(GitHubClient):
    """`upsert_todo_comment`, `post_comment`, `add_reaction` and `list_reactions` of the Forge
    protocol; part of `GitHubForge`."""

    def prefetch_todo(self, repo: RepoRef, number: int, session_id: str) -> None:
        """Start looking for the session's todo comment now, alongside the job's other first
        reads; the job's first `upsert_todo_comment` without an id takes the answer instead
        of asking GitHub again (once, and only within `PREFETCH_FRESH_S`)."""
        key = (repo.full_name.lower(), number, marker(session_id))
        if key in self._todo_lookups:
            return
        lookup = asyncio.ensure_future(self._find_comment(repo, number, key[2]))
        # Retrieved here so an answer nobody takes is not reported as lost; a failure is
        # raised again to the upsert that takes it, which then asks GitHub itself.
        lookup.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._todo_lookups[key] = (time.monotonic(), lookup)

    async def _prefetched(self, repo: RepoRef, number: int, tag: str) -> Any | None:
        early = self._todo_lookups.pop((repo.full_name.lower(), number, tag), None)
        if early is not None and time.monotonic() - early[0] < PREFETCH_FRESH_S:
            try:
                return await early[1]
            except (GitHubException, ForgeError):
                pass
        elif early is not None:
            early[1].cancel()
        return await self._find_comment(repo, number, tag)

    async def upsert_todo_comment(
        self, repo: RepoRef, number: int, session_id: str, body: str, comment_id: int | None
    ) -> int:
        """Edit our todo comment (by id, else found by its marker), or create it."""
        tag = marker(session_id)
        if tag not in body:
            body = f"{tag}\n{body}"
        rest = self._rest(repo)
        async with self._errors("updating the todo comment", repo):
            if comment_id is not None:
                try:
                    self._count("update_comment")
                    await rest.issues.async_update_comment(
                        repo.owner, repo.name, comment_id, body=body
                    )
                    return comment_id
                except RequestFailed as exc:
                    if exc.response.status_code != 404:  # 404: someone deleted it
                        raise
            found = await self._prefetched(repo, number, tag)
            if found is not None:
                if found.body != body:
                    self._count("update_comment")
                    await rest.issues.async_update_comment(
                        repo.owner, repo.name, found.id, body=body
                    )
                return found.id
            self._count("create_comment")
            created = await rest.issues.async_create_comment(
                repo.owner, repo.name, number, body=body
            )
            return created.parsed_data.id

    async def _find_comment(self, repo: RepoRef, number: int, tag: str) -> Any | None:
        """The oldest comment by a Bot (the App) on the issue whose body holds `tag`."""
        pages = self._pages(repo, self._rest(repo).issues.async_list_comments, issue_number=number)
        async for comment in pages:
            user = comment.user
            if user is not None and user.type == "Bot" and tag in (comment.body or ""):
                return comment
        return None

    async def post_comment(self, repo: RepoRef, number: int, body: str) -> int:
        async with self._errors("posting a comment", repo):
            self._count("create_comment")
            resp = await self._rest(repo).issues.async_create_comment(
                repo.owner, repo.name, number, body=body
            )
            return resp.parsed_data.id

    async def add_reaction(self, repo: RepoRef, comment_id: int, content: str) -> None:
        if content not in REACTIONS:
            raise ForgeError(
                f"{content!r} is not a GitHub reaction: use one of {sorted(REACTIONS)}."
            )
        async with self._errors("adding a reaction", repo):
            self._count("create_reaction")
            await self._rest(repo).reactions.async_create_for_issue_comment(
                repo.owner, repo.name, comment_id, content=content
            )

    async def list_reactions(self, repo: RepoRef, comment_id: int) -> list[tuple[str, str]]:
        """(login, content) of every reaction on the comment, all pages; [] if it is gone."""
        pages = self._pages(
            repo, self._rest(repo).reactions.async_list_for_issue_comment, comment_id=comment_id
        )
        found: list[tuple[str, str]] = []
        async with self._errors("reading reactions", repo):
            try:
                async for item in pages:
                    # A deleted account's reactions stay, without a user: GitHub shows "ghost".
                    login = item.user.login if item.user is not None else "ghost"
                    found.append((login, item.content))
            except RequestFailed as exc:
                if exc.response.status_code != 404:  # 404: the comment was deleted
                    raise
                return []
        return found
