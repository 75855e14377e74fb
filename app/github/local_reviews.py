"""Pull request reviews on the `LocalForge`: `reviews/OWNER/NAME.json` holds every review and
line comment of a repository, the App's thread replies included.

`add_review` plays a reviewer (the demo, tests); `get_review` and `reply_to_review_comment`
are the Forge protocol's, as on GitHub.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from app.github.errors import ForgeError
from app.github.forge import RepoRef, Review, ReviewComment, validate_path
from app.github.local_files import LocalFiles
from app.github.local_git import json_file

APP_LOGIN = "idp-copilot[bot]"
REVIEW_STATES = ("approved", "changes_requested", "commented")


class LocalReviews(LocalFiles):
    """Reviews of `LocalForge`: one JSON file per repository, beside its other records."""

    def _reviews_file(self, repo: RepoRef) -> Path:
        return self._area("reviews", repo).with_suffix(".json")

    def add_review(
        self,
        repo: RepoRef,
        number: int,
        author: str,
        body: str = "",
        state: str = "commented",
        comments: list[tuple[str, int | None, str]] = (),  # type: ignore[assignment]
    ) -> tuple[int, list[int]]:
        """A submitted review by `author` with line comments (path, line, text); returns the
        review's id and its comments' ids."""
        if state not in REVIEW_STATES:
            raise ForgeError(f"{state!r} is not a review state: use one of {REVIEW_STATES}.")
        for path, _, _ in comments:
            validate_path(path)
        with _store(self._reviews_file(repo)) as data:
            review_id = _next_id(data)
            data["reviews"][str(review_id)] = {
                "number": number,
                "author": author,
                "state": state,
                "body": body,
            }
            ids = []
            for path, line, text in comments:
                comment_id = _next_id(data)
                data["comments"][str(comment_id)] = {
                    "number": number,
                    "review_id": review_id,
                    "path": path,
                    "line": line,
                    "diff_hunk": "",
                    "body": text,
                    "author": author,
                    "in_reply_to": None,
                }
                ids.append(comment_id)
        return review_id, ids

    def review_replies(self, repo: RepoRef, comment_id: int) -> list[str]:
        """The bodies of the replies in line comment `comment_id`'s thread, oldest first."""
        path = self._reviews_file(repo)
        data = _load(path)
        return [
            c["body"]
            for _, c in sorted(data["comments"].items(), key=lambda item: int(item[0]))
            if c["in_reply_to"] == comment_id
        ]

    async def get_review(self, repo: RepoRef, number: int, review_id: int) -> Review:
        def read() -> Review:
            data = _load(self._reviews_file(repo))
            review = data["reviews"].get(str(review_id))
            if review is None or review["number"] != number:
                raise ForgeError(f"There is no review {review_id} on {repo.full_name}#{number}.")
            comments = tuple(
                ReviewComment(
                    id=int(cid),
                    path=c["path"],
                    line=c["line"],
                    diff_hunk=c["diff_hunk"],
                    body=c["body"],
                    author=c["author"],
                    in_reply_to=c["in_reply_to"],
                )
                for cid, c in sorted(data["comments"].items(), key=lambda item: int(item[0]))
                if c["review_id"] == review_id
            )
            return Review(review_id, review["author"], review["state"], review["body"], comments)

        return await asyncio.to_thread(read)

    async def list_reviews(self, repo: RepoRef, number: int) -> list[Review]:
        def read() -> list[Review]:
            data = _load(self._reviews_file(repo))
            return [
                Review(int(rid), r["author"], r["state"], r["body"])
                for rid, r in sorted(data["reviews"].items(), key=lambda item: int(item[0]))
                if r["number"] == number
            ]

        return await asyncio.to_thread(read)

    async def reply_to_review_comment(
        self, repo: RepoRef, number: int, comment_id: int, body: str
    ) -> int:
        def reply() -> int:
            with _store(self._reviews_file(repo)) as data:
                parent = data["comments"].get(str(comment_id))
                if parent is None or parent["number"] != number:
                    raise ForgeError(f"There is no review comment {comment_id} on #{number}.")
                reply_id = _next_id(data)
                data["comments"][str(reply_id)] = {
                    **parent,
                    "review_id": None,
                    "body": body,
                    "author": APP_LOGIN,
                    "in_reply_to": comment_id,
                }
            self.writes["create_review_reply"] += 1
            return reply_id

        return await asyncio.to_thread(reply)


def _load(path: Path) -> dict[str, Any]:
    import json

    return json.loads(path.read_text()) if path.exists() else _empty()


def _empty() -> dict[str, Any]:
    return {"next_id": 1, "reviews": {}, "comments": {}}


def _next_id(data: dict[str, Any]) -> int:
    value = int(data["next_id"])
    data["next_id"] = value + 1
    return value


def _store(path: Path) -> Any:
    """The LocalForge's locked read-modify-write of the reviews file."""
    return json_file(path, _empty())
