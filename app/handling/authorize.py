"""Who may run what, and how often: the sender's permission on the repository against what
the verb needs, and the read-level budget per user and repository.

The need comes from the repo's `.github/idp-copilot.yml` (app/repo_config.py
`required_permission`, never below the defaults). `admit` sorts a comment's commands before
the App writes anything: the refused ones get one polite comment per comment, naming the
permission each needs, and only for verbs not refused before in the session (asking again
is answered by the 😕 reaction alone); read-level commands past the hourly budget get one
comment per hour and nothing more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.budgets import HOUR, READ_VERBS, Window, first_notice, take_read_command
from app.github.forge import PERMISSION_RANK
from app.grammar.commands import Command, escape_user_text
from app.repo_config import DEFAULT_PERMISSIONS, required_permission

if TYPE_CHECKING:
    from app.handling.context import JobContext

# Verbs GitHub's own events produce (a merge, a close, a failed CI run): no person typed them,
# nothing to check (a bot may close the App's pull request; its locks go all the same).
INTERNAL_VERBS = frozenset({"merged", "closed", "ci"})
# Reviews: app/handling/review.py checks them against `reviewers.min_permission`, with a refusal of
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


async def refusal(ctx: JobContext, command: Command) -> tuple[str, str] | None:
    """None when the sender may run `command`, else (permission needed, permission held)."""
    verb = command.verb
    if verb in INTERNAL_VERBS or verb in HANDLER_CHECKED_VERBS:
        return None
    needed = required_permission(ctx.config, verb)
    if needed == OPEN_LEVEL:
        return None
    if verb == "answer" and _is_requester(ctx):
        return None  # the requester answers their own question, whatever their role
    have = await sender_permission(ctx)
    if PERMISSION_RANK.get(have, 0) >= PERMISSION_RANK[needed]:
        return None
    return needed, have


@dataclass
class Admission:
    """A trigger's commands sorted before any write: what runs, what is refused (verb,
    needed, held), and the read-level commands past the sender's hourly budget."""

    allowed: list[Command] = field(default_factory=list)
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    limited: list[Command] = field(default_factory=list)


async def admit(ctx: JobContext, commands: list[Command]) -> Admission:
    """Sort `commands` (see `Admission`); charges the read-level budget of what may run."""
    admission = Admission()
    trigger = ctx.trigger
    for command in commands:
        refused = await refusal(ctx, command)
        if refused is not None:
            admission.refused.setdefault(command.verb, refused)
        elif (
            command.verb in READ_VERBS
            and trigger.authorized_permission is None  # operators are not rate-limited
            and not take_read_command(ctx.connection, ctx.settings, trigger.repo, trigger.sender)
        ):
            admission.limited.append(command)
        else:
            admission.allowed.append(command)
    return admission


async def answer_refusals(ctx: JobContext, admission: Admission) -> None:
    """One comment for every refused and rate-limited command of this trigger together:
    refusals for verbs not refused before in the session, the rate limit once an hour."""
    sender = ctx.trigger.sender.lower()
    keys = [("refused", ctx.session_id, sender, verb) for verb in admission.refused]
    fresh = [key for key in keys if ctx.once(*key)]
    paragraphs = [refusal_text(ctx, key[3], *admission.refused[key[3]]) for key in fresh]
    window = Window.now(HOUR)
    if admission.limited and first_notice(
        ctx.connection, ctx.settings, window, "read-notice", ctx.trigger.repo.lower(), sender
    ):
        paragraphs.append(limit_text(ctx, window))
    if not paragraphs:
        return
    try:
        await ctx.reply("\n\n".join(paragraphs))
    except Exception:
        for key in fresh:
            ctx.forget(*key)  # not said: a retry of the job says it
        raise


def limit_text(ctx: JobContext, window: Window) -> str:
    who = escape_user_text(ctx.trigger.sender)
    resets = time.strftime("%H:%M UTC", time.gmtime(window.ends_at))
    return (
        f"Sorry {who}, you have run {ctx.settings.read_commands_per_hour} read-level commands "
        f"(`ask`, `help`, `status`, `feedback`) in this repository this hour, so I am not "
        f"answering more until {resets}. This is said once an hour."
    )


def refusal_text(ctx: JobContext, verb: str, needed: str, have: str) -> str:
    who = escape_user_text(ctx.trigger.sender)
    why = ""
    if needed != DEFAULT_PERMISSIONS.get(verb):
        result = ctx.config_result
        source = result.origin_file(f"permissions.{verb}") if result is not None else None
        if source is None or source.kind == "repository":
            why = " (this repository's `.github/idp-copilot.yml` asks for it)"
        else:
            why = f" (`{source.where}` asks for it)"
    extra = " The requester may also answer their own question." if verb == "answer" else ""
    return (
        f"Sorry {who}, `/idp {verb}` needs **{needed}** permission on this repository"
        f"{why}, and you have **{have}**. Ask someone with {needed} access to run it.{extra}"
    )
