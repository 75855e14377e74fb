"""Pull request reviews on `FakeGitHub`: reviews a test submits, GET of a review and of its
comments (paged as GitHub pages them), and replies in a line comment's thread.

GitHub's pages: https://docs.github.com/en/rest/pulls/reviews#get-a-review-for-a-pull-request,
https://docs.github.com/en/rest/pulls/reviews#list-comments-for-a-pull-request-review and
https://docs.github.com/en/rest/pulls/comments#create-a-reply-for-a-review-comment.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import httpx

from tests import github_rules as rules
from tests.github_api import Where, app_user, diff_hunk, pull_review, review_comment, user


class FakeReviews:
    """Reviews and review comments of the FakeGitHub's pull requests (mixed into it)."""

    at: Where
    refs: dict[str, str]
    pulls: dict[int, dict[str, Any]]
    reviews: dict[int, dict[str, Any]]
    review_comments: dict[int, dict[str, Any]]
    _ids: itertools.count

    if TYPE_CHECKING:

        def files(self, branch: str) -> dict[str, str]: ...

    def add_review(
        self,
        number: int,
        login: str,
        body: str = "",
        state: str = "commented",
        comments: list[tuple[str, int, str]] = (),  # type: ignore[assignment]
    ) -> tuple[int, list[int]]:
        """A review `login` submitted on pull request `number`, with line comments (path,
        line, text) on its head; returns the review's id and its comments' ids."""
        head = self.refs[self.pulls[number]["branch"]]
        files = self.files(self.pulls[number]["branch"])
        review_id = next(self._ids)
        author = user(login, id=77, at=self.at)
        self.reviews[review_id] = {
            "number": number,
            "body": body,
            "state": state,
            "author": author,
            "commit_id": head,
        }
        ids = []
        for path, line, text in comments:
            comment_id = next(self._ids)
            self.review_comments[comment_id] = {
                "number": number,
                "review_id": review_id,
                "path": path,
                "line": line,
                "diff_hunk": diff_hunk(files.get(path, ""), line),
                "body": text,
                "author": author,
                "commit_id": head,
                "in_reply_to": None,
            }
            ids.append(comment_id)
        return review_id, ids

    def thread_replies(self, comment_id: int) -> list[str]:
        """The bodies of the replies in line comment `comment_id`'s thread, oldest first."""
        return [
            c["body"]
            for _, c in sorted(self.review_comments.items())
            if c["in_reply_to"] == comment_id
        ]

    def _review_comment_body(self, comment_id: int) -> dict:
        c = self.review_comments[comment_id]
        return review_comment(
            comment_id,
            c["number"],
            review_id=c["review_id"],
            path=c["path"],
            line=c["line"],
            diff_hunk=c["diff_hunk"],
            body=c["body"],
            commit_id=c["commit_id"],
            in_reply_to=c["in_reply_to"],
            author=c["author"],
            at=self.at,
        )

    def _review(
        self, request: httpx.Request, body: Any, number: str, review_id: str
    ) -> httpx.Response:
        r = self.reviews.get(int(review_id))
        if r is None or r["number"] != int(number):
            return rules.not_found()
        return rules.answer(self._review_body(int(review_id)))

    def _review_body(self, review_id: int) -> dict:
        r = self.reviews[review_id]
        return pull_review(
            review_id,
            r["number"],
            r["body"],
            r["state"],
            r["commit_id"],
            author=r["author"],
            at=self.at,
        )

    def _list_reviews(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        """GET …/pulls/{n}/reviews: submitted reviews, oldest first, paged
        (https://docs.github.com/en/rest/pulls/reviews#list-reviews-for-a-pull-request)."""
        if int(number) not in self.pulls:
            return rules.not_found()
        ids = sorted(i for i, r in self.reviews.items() if r["number"] == int(number))
        chunk, headers = rules.page(request, ids, f"{self.at.url}/pulls/{number}/reviews")
        return rules.answer([self._review_body(i) for i in chunk], headers=headers)

    def _review_comments(
        self, request: httpx.Request, body: Any, number: str, review_id: str
    ) -> httpx.Response:
        review = self.reviews.get(int(review_id))
        if review is None or review["number"] != int(number):
            return rules.not_found()
        ids = sorted(i for i, c in self.review_comments.items() if c["review_id"] == int(review_id))
        url = f"{self.at.url}/pulls/{number}/reviews/{review_id}/comments"
        chunk, headers = rules.page(request, ids, url)
        return rules.answer([self._review_comment_body(i) for i in chunk], headers=headers)

    def _reply_to_review_comment(
        self, request: httpx.Request, body: Any, number: str, comment_id: str
    ) -> httpx.Response:
        parent = self.review_comments.get(int(comment_id))
        if parent is None or parent["number"] != int(number):
            return rules.not_found()
        reply_id = next(self._ids)
        # GitHub files a reply under a review of its own; the thread is what readers see.
        self.review_comments[reply_id] = {
            **parent,
            "review_id": next(self._ids),
            "body": body["body"],
            "author": app_user(self.at),
            "in_reply_to": int(comment_id),
        }
        return rules.answer(self._review_comment_body(reply_id), 201)
