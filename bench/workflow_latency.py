"""What `bench/workflow.py --github-latency-ms` adds: a GitHub stand-in that answers every
request after a fixed delay (as api.github.com does from far away), and the two times a user
waits for: from the webhook to the App's first comment on the issue, and to its pull request.

"The webhook" is the moment the receiver queued the delivery (the benchmark queues it as the
receiver does, `jobs.queue.enqueue_trigger`); the comment and the pull request count when the
stand-in has answered the POST that created them, delay included.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

from tests import payloads
from tests.github_standin import GitHubStandIn
from tools.builtin.publish import branch_for


class SlowGitHub(GitHubStandIn):
    """The stand-in, answering after `latency_s`; it notes when it answered each request."""

    def __init__(self, owner: str, name: str, latency_s: float = 0.0) -> None:
        super().__init__(owner, name)
        self.latency_s = latency_s
        # (time answered, method, path, request body), in the order answered
        self.answered: list[tuple[float, str, str, bytes]] = []

    async def _asgi(self, scope, receive, send) -> None:
        chunks: list[bytes] = []

        async def keep_body():
            message = await receive()
            chunks.append(message.get("body", b""))
            return message

        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        await super()._asgi(scope, keep_body, send)
        self.answered.append((time.time(), scope["method"], scope["path"], b"".join(chunks)))


def milestones(
    standin: SlowGitHub, queued_at: dict[int, float]
) -> dict[int, dict[str, float | None]]:
    """Issue number → seconds from the webhook to the first comment and to the pull request
    (None when it never came)."""
    owner, name = payloads.REPO.split("/")
    comment_path = re.compile(rf"^/repos/{owner}/{name}/issues/(\d+)/comments$")
    issue_of_branch = {branch_for(f"{payloads.REPO}#{k}"): k for k in queued_at}
    found: dict[int, dict[str, float | None]] = {
        k: {"first_comment_s": None, "pull_request_s": None} for k in queued_at
    }
    for answered, method, path, body in standin.answered:
        if method != "POST":
            continue
        key, k = None, None
        if hit := comment_path.match(path):
            key, k = "first_comment_s", int(hit.group(1))
        elif path == f"/repos/{owner}/{name}/pulls":
            head = str(json.loads(body or b"{}").get("head", "")).split(":")[-1]
            key, k = "pull_request_s", issue_of_branch.get(head)
        if k in found and found[k][key] is None:
            found[k][key] = answered - queued_at[k]
    return found
