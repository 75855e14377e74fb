"""Reviews of the App's pull request, as GitHub delivers them: the `pull_request_review` and
`pull_request_review_comment` payloads for a review that `FakeGitHub` holds, and a
`ReviewWorld` whose reviewers submit reviews the way people do on github.com.

GitHub sends one `pull_request_review_comment.created` per line comment and then
`pull_request_review.submitted` for the review; `ReviewWorld.review` delivers them all.
"""

from __future__ import annotations

from typing import Any

from tests import github_api as gh
from tests import payloads
from tests.job_world import World


def _envelope(action: str, sender: str, pull: dict, **objects: Any) -> dict:
    return {
        "action": action,
        **objects,
        "pull_request": pull,
        "repository": payloads.repository(),
        "organization": {"login": "acme", "id": 9919},
        "sender": payloads.user(sender),
        "installation": {"id": payloads.INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9u"},
    }


def _pull(github: gh.FakeGitHub, number: int) -> dict:
    return github._pull(number)


def review_submitted(github: gh.FakeGitHub, review_id: int) -> dict:
    """`pull_request_review.submitted` for a review FakeGitHub holds (state in lower case,
    as webhooks spell it)."""
    r = github.reviews[review_id]
    body = gh.pull_review(
        review_id, r["number"], r["body"], r["state"], r["commit_id"], author=r["author"]
    )
    body["state"] = r["state"].lower()
    return _envelope("submitted", r["author"]["login"], _pull(github, r["number"]), review=body)


def review_comment_created(github: gh.FakeGitHub, comment_id: int) -> dict:
    """`pull_request_review_comment.created` for a line comment FakeGitHub holds."""
    c = github.review_comments[comment_id]
    comment = github._review_comment_body(comment_id)
    return _envelope("created", c["author"]["login"], _pull(github, c["number"]), comment=comment)


class ReviewWorld(World):
    """acme/payments with the App's pull request open, reviewed by the people of `PEOPLE`."""

    def review(
        self,
        login: str,
        body: str = "",
        state: str = "changes_requested",
        comments: list[tuple[str, int, str]] = (),  # type: ignore[assignment]
        **kw: Any,
    ) -> list[dict[str, str]]:
        """Submit a review on the App's pull request; every delivery's job result, the
        line comments' first and the review's last."""
        review_id, ids = self.github.add_review(self.pr_number(), login, body, state, comments)
        event = "pull_request_review_comment"
        results = [self.deliver(event, review_comment_created(self.github, i), **kw) for i in ids]
        results.append(
            self.deliver("pull_request_review", review_submitted(self.github, review_id), **kw)
        )
        self.last_comments = ids
        return results

    def branch_files(self) -> dict[str, str]:
        return self.github.files(self.session.branch or "")

    def line_of(self, path: str, text: str) -> int:
        """The 1-based line of the branch's `path` that holds `text`."""
        lines = self.branch_files()[path].splitlines()
        return next(n for n, line in enumerate(lines, 1) if text in line)
