"""Who may run what: the sender's permission on the repository against what the verb needs.

The need comes from the repo's `.github/idp-copilot.yml` (app/repo_config.py
`required_permission`, never below the defaults). A refused command gets one polite comment
that names the permission needed, once per user, verb and session: asking again is
answered by the 😕 reaction alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.commands import Command, escape_user_text
from app.github.forge import PERMISSION_RANK
from app.repo_config import DEFAULT_PERMISSIONS, required_permission

if TYPE_CHECKING:
    from jobs.handlers import JobContext

# Verbs GitHub's own events produce (a merge): no person typed them, nothing to check.
INTERNAL_VERBS = frozenset({"merged"})
# Reviews: jobs/review.py checks them against `reviewers.min_permission`, with a refusal of
# its own, and only on the App's pull requests.
HANDLER_CHECKED_VERBS = frozenset({"review"})
# Anyone who can comment may run these (help, status, ask, feedback by default).
OPEN_LEVEL = "read"


async def sender_permission(ctx: JobContext) -> str:
    """The sender's permission: what the operator API already granted, else the forge's
    collaborator permission (cached in Redis for a minute)."""
    if ctx.trigger.authorized_permission:
        return ctx.trigger.authorized_permission
    return await ctx.forge.permission(ctx.repo, ctx.trigger.sender)


def _is_requester(ctx: JobContext) -> bool:
    session = ctx.store.get(ctx.session_id)
    requester = session.requester if session is not None else None
    return bool(requester) and requester.lower() == ctx.trigger.sender.lower()


async def authorize(ctx: JobContext, command: Command) -> bool:
    """True when the sender may run `command`; otherwise one refusal comment (see module)."""
    verb = command.verb
    if verb in INTERNAL_VERBS or verb in HANDLER_CHECKED_VERBS:
        return True
    needed = required_permission(ctx.config, verb)
    if needed == OPEN_LEVEL:
        return True
    if verb == "answer" and _is_requester(ctx):
        return True  # the requester answers their own question, whatever their role
    have = await sender_permission(ctx)
    if PERMISSION_RANK.get(have, 0) >= PERMISSION_RANK[needed]:
        return True
    once = ("refused", ctx.session_id, ctx.trigger.sender.lower(), verb)
    await ctx.reply(refusal_text(ctx, verb, needed, have), once_key=once)
    return False


def refusal_text(ctx: JobContext, verb: str, needed: str, have: str) -> str:
    who = escape_user_text(ctx.trigger.sender)
    why = (
        " (this repository's `.github/idp-copilot.yml` asks for it)"
        if needed != DEFAULT_PERMISSIONS.get(verb)
        else ""
    )
    extra = " The requester may also answer their own question." if verb == "answer" else ""
    return (
        f"Sorry {who}, `/idp {verb}` needs **{needed}** permission on this repository"
        f"{why}, and you have **{have}**. Ask someone with {needed} access to run it.{extra}"
    )
