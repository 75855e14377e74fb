"""What the agent shows on GitHub besides the PR: the todo comment and plain replies.

The todo comment is created once and then edited, only when its text changed, so a re-run
or an idle step writes nothing. The pull request itself is the `open_pull_request` tool
(tools/builtin/publish.py), so the model and the rules planner reach it the same way;
`unpublished_args` tells when the session's files are not on it yet.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from app.agent.guard import idempotency_key
from app.config import Settings
from app.domain.session import Session, StepRecord
from app.domain.todo import render_todo
from app.github.errors import ForgeError
from app.github.forge import Forge, RepoRef
from app.redaction import redact

log = logging.getLogger(__name__)

PUBLISH_TOOL = "open_pull_request"

# GitHub rejects comment bodies over 65,536 characters; keep room for the closing note.
COMMENT_LIMIT = 65_000


def fit_comment(text: str, session: Session, limit: int = COMMENT_LIMIT) -> str:
    """`text` cut at a line boundary to fit one comment, with a note on where the rest is."""
    if len(text) <= limit:
        return text
    where = f"the pull request {session.pr_url}" if session.pr_url else f"session `{session.id}`"
    tail = (
        "\n\n_The list is longer than GitHub allows in one comment; the full list is in "
        f"{where}._\n"
    )
    cut = text[: limit - len(tail)]
    if "\n" in cut:
        cut = cut[: cut.rfind("\n")]
    return cut + tail


class Publisher:
    """Keeps one session's todo comment in step with its todo, through a `Forge`."""

    def __init__(self, forge: Forge, settings: Settings) -> None:
        self.forge = forge
        self.settings = settings

    def render(self, session: Session) -> str:
        """The comment text for the session's todo: rendered, redacted, fitted."""
        if session.todo is None:
            return ""
        text = render_todo(session.todo, session.id)
        return fit_comment(redact(text, self.settings.secret_values()), session)

    async def sync_todo(self, session: Session, repo: RepoRef) -> bool:
        """Create or edit the todo comment when its text changed; True when it wrote.

        A forge failure is logged and left for the next step boundary to retry: the todo
        comment is a view of the session, never a reason to stop the work.
        """
        text = self.render(session)
        if not text or (text == session.rendered_todo and session.comment_id is not None):
            return False
        try:
            session.comment_id = await self.forge.upsert_todo_comment(
                repo, session.number, session.id, text, session.comment_id
            )
        except ForgeError as exc:
            log.warning("todo comment of %s not updated: %s", session.id, exc)
            return False
        session.rendered_todo = text
        return True

    async def reply(self, session: Session, repo: RepoRef, text: str) -> bool:
        """Post `text` as a plain comment once per session (a re-run posts nothing).
        True when it posted."""
        text = fit_comment(redact(text, self.settings.secret_values()), session)
        key = hashlib.sha256(f"{session.id}\0reply\0{text}".encode()).hexdigest()
        if session.step_for(key) is not None:
            return False
        started = time.time()
        comment_id = await self.forge.post_comment(repo, session.number, text)
        session.steps.append(
            StepRecord(
                tool="post_comment",
                idempotency_key=key,
                ok=True,
                output={"comment_id": comment_id},
                started_at=started,
                finished_at=time.time(),
            )
        )
        return True


def unpublished_args(session: Session, tool: str = PUBLISH_TOOL) -> dict[str, Any] | None:
    """Arguments for `tool` when the session's generated files are not all on its pull
    request (none opened yet, or files changed since the last one): the last successful
    call's, so the title and summary stay; `{}` when there was none. None when the files
    are published or there are none.

    A publication's idempotency key covers the files it committed (`Agent.execute`), so
    the files are on the pull request exactly when a successful call's key, recomputed with
    today's files, is unchanged."""
    if not session.files:
        return None
    published = [step for step in session.steps if step.tool == tool and step.ok]
    for step in published:
        if step.idempotency_key == idempotency_key(session.id, tool, step.args, session.files):
            return None
    return dict(published[-1].args) if published else {}
