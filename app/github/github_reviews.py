"""Pull request reviews on GitHub for `GitHubForge`: reading a submitted review with its line
comments, and replying in the thread of a line comment.

Used by the review loop (app/handling/review.py): a review is read once, as a whole, so its body and
every line comment become one revision of the App's pull request.
"""

from __future__ import annotations

from typing import Any

from app.github.forge import RepoRef, Review, ReviewComment
from app.github.github_client import GitHubClient

# A deleted account's review or comment has no user; GitHub shows it as "ghost".
GHOST = "ghost"


class GitHubReviews(GitHubClient):
    """`get_review` and `reply_to_review_comment` of the Forge protocol; part of
    `GitHubForge`."""

    async def get_review(self, repo: RepoRef, number: int, review_id: int) -> Review:
        """GET …/pulls/{n}/reviews/{id} and every page of …/reviews/{id}/comments."""
        rest = self._rest(repo)
        async with self._errors(f"reading review {review_id} of #{number}", repo):
            resp = await rest.pulls.async_get_review(repo.owner, repo.name, number, review_id)
            data = resp.parsed_data
            pages = self._pages(
                repo,
                rest.pulls.async_list_comments_for_review,
                pull_number=number,
                review_id=review_id,
            )
            comments = [_comment(item) async for item in pages]
        return Review(
            id=data.id,
            author=data.user.login if data.user is not None else GHOST,
            state=str(data.state).lower(),
            body=data.body or "",
            comments=tuple(comments),
        )

    async def list_reviews(self, repo: RepoRef, number: int) -> list[Review]:
        """GET …/pulls/{n}/reviews, every page, oldest first; without line comments."""
        rest = self._rest(repo)
        async with self._errors(f"listing the reviews of #{number}", repo):
            pages = self._pages(repo, rest.pulls.async_list_reviews, pull_number=number)
            return [
                Review(
                    id=item.id,
                    author=item.user.login if item.user is not None else GHOST,
                    state=str(item.state).lower(),
                    body=item.body or "",
                )
                async for item in pages
            ]

    async def reply_to_review_comment(
        self, repo: RepoRef, number: int, comment_id: int, body: str
    ) -> int:
        """POST …/pulls/{n}/comments/{id}/replies: the answer lands in the comment's thread."""
        async with self._errors(f"replying to review comment {comment_id}", repo):
            self._count("create_review_reply")
            resp = await self._rest(repo).pulls.async_create_reply_for_review_comment(
                repo.owner, repo.name, number, comment_id, body=body
            )
            return resp.parsed_data.id


def _int_or_none(value: Any) -> int | None:
    # githubkit marks absent fields with UNSET, which is not an int.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _comment(item: Any) -> ReviewComment:
    return ReviewComment(
        id=item.id,
        path=item.path,
        line=_int_or_none(item.line) or _int_or_none(item.original_line),
        diff_hunk=item.diff_hunk or "",
        body=item.body or "",
        author=item.user.login if item.user is not None else GHOST,
        in_reply_to=_int_or_none(item.in_reply_to_id),
    )
