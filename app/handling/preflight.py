"""Before a job's first write: does the App's installation grant what the job needs?

The installation token's response lists the permissions the installation granted; the
forge keeps them with the cached token. A job that lacks one writes nothing half-made (no
branch, commit or pull request): the todo comment gets one line naming the permission and
how an owner grants it. A job that cannot even comment (no `issues: write`) logs that and
stops. What each command needs is app/github/permissions.py's `needs_for`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.agent.planner import title_for
from app.agent.publisher import Publisher
from app.domain.session import Session
from app.domain.todo import Todo
from app.github.errors import ForgeError
from app.github.forge import RepoRef
from app.github.permissions import COMMENTS, grant_sentence, missing, needs_for

if TYPE_CHECKING:
    from app.handling.context import JobContext

log = logging.getLogger(__name__)

# How the todo's line about a missing permission starts: found again, and dropped, once the
# permission is there.
NOTE_PREFIX = "⛔ No branch, commit or pull request was made:"


async def granted_permissions(ctx: JobContext) -> dict[str, str] | None:
    """The installation's grants, or None when unknown (then the job goes ahead, and a
    refusal by GitHub is explained with the same words)."""
    try:
        return await ctx.forge.granted_permissions(ctx.repo)
    except ForgeError as exc:
        log.warning("permissions of the App on %s not read: %s", ctx.repo.full_name, exc)
        return None


async def may_comment(ctx: JobContext) -> bool:
    """False, and an error in the log, when the installation cannot comment at all: the job
    has no way to tell anyone on GitHub, so it does nothing there."""
    granted = await granted_permissions(ctx)
    lacking = missing(COMMENTS, granted) if granted is not None else {}
    if not lacking:
        return True
    log.error(
        "IDP Copilot cannot answer on %s: %s",
        ctx.repo.full_name,
        grant_sentence(lacking).replace("**", ""),
    )
    return False


def drop_permission_note(session: Session) -> None:
    """Forget the line an earlier blocked run left; a todo that held only it goes."""
    todo = session.todo
    if todo is None or not any(n.startswith(NOTE_PREFIX) for n in todo.notes):
        return
    todo.notes = [n for n in todo.notes if not n.startswith(NOTE_PREFIX)]
    if not (todo.tasks or todo.notes or todo.open_questions or todo.revisions):
        session.todo = None  # the todo existed only to say so: plan afresh


async def may_write(ctx: JobContext, session: Session, *, revision: bool = False) -> bool:
    """True when the installation grants what this job's command needs. Otherwise the todo
    comment says which permission is missing (one line) and nothing else is written. An
    agent run is failed, so `/idp retry` resumes it once the permission is there; a
    `revision` (a review, `/idp set`) leaves the session as it is, and is sent again."""
    drop_permission_note(session)
    granted = await granted_permissions(ctx)
    lacking = missing(needs_for(ctx.scope.command), granted) if granted is not None else {}
    if not lacking:
        return True
    log.warning("%s blocked on %s: missing %s", session.id, ctx.repo.full_name, lacking)
    if session.todo is None:
        session.todo = Todo(title=title_for(session))
    then = "submit the review or the `/idp set` comment again" if revision else None
    line = grant_sentence(lacking, then) if then else grant_sentence(lacking)
    session.todo.notes.append(f"{NOTE_PREFIX} {line}")
    if not revision:
        session.status = "failed"
    repo = RepoRef.parse(session.repo, session.installation_id)
    await Publisher(ctx.forge, ctx.settings).sync_todo(session, repo)
    return False
