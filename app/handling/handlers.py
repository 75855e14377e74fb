"""What a job does with a `Trigger`: acknowledge it, read the repo's config, check who asks,
then run each command for its session.

`handle_trigger` is the one composition point; each verb has a small handler in
verbs.py, pr_commands.py or cancel.py beside it. GitHub is reached only through the job's
audited `Forge`, the agent only through agent_run.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from app.config_layers import RedisFileCache, load_repo_config
from app.domain.outcomes import UNSUCCESSFUL_OUTCOMES
from app.feedback import FeedbackStore, outcome_of
from app.github.errors import ForgeError
from app.grammar.commands import Command
from app.handling import (
    ci,
    create_repo,
    namespace_wait,
    pr_commands,
    preflight,
    review,
    sweep,
    upgrade_verb,
    verbs,
)
from app.handling.authorize import INTERNAL_VERBS, admit, answer_refusals, sender_permission
from app.handling.cancel import cancel
from app.handling.context import JobContext
from app.repo_config import DEFAULT_PERMISSIONS
from tools.template_sets.sources import TemplateSetCatalog

log = logging.getLogger(__name__)

# The defaults of who may run what (app/repo_config.py); a repo's config may raise them.
REQUIRED_PERMISSION: dict[str, str] = dict(DEFAULT_PERMISSIONS)
Handler = Callable[[JobContext, Command], Awaitable[str]]


async def handle_trigger(ctx: JobContext) -> dict[str, str]:
    """React, load the config, answer parse errors, run every command; verb → outcome."""
    trigger = ctx.trigger
    if trigger.locked:
        return {"ignored": "locked"}  # a locked conversation gets nothing, not even a reaction
    if review.not_ours(ctx):
        return {"review": "ignored"}  # chat on a pull request the App did not open
    if not await preflight.may_comment(ctx):
        return {"blocked": "the App's installation lacks issues: write"}  # logged
    if too_many_commands(ctx):
        return await refuse_comment(ctx)
    outcomes: dict[str, str] = {}
    await asyncio.gather(load_config(ctx), early_reads(ctx))
    # Sorted before any write: a comment of refused or rate-limited commands costs at most
    # one reply and one reaction, whatever the number of commands in it.
    admission = await admit(ctx, trigger.commands)
    if trigger.comment_id is not None and (admission.allowed or trigger.errors):
        await react(ctx, "eyes")
    if trigger.errors:
        ctx.scope.command = "errors"
        lines = "\n".join(f"- {e}" for e in trigger.errors)
        await ctx.reply(f"I could not run that:\n\n{lines}\n\n`/idp help` lists commands.")
        outcomes["errors"] = "answered"
    ctx.scope.command = "refused"
    await answer_refusals(ctx, admission)
    outcomes |= dict.fromkeys(admission.refused, "refused")
    outcomes |= {c.verb: "rate-limited" for c in admission.limited}
    failed = bool(admission.refused) or (bool(trigger.errors) and not trigger.commands)
    for command in admission.allowed:
        ctx.scope.command = command.verb
        outcome = await HANDLERS.get(command.verb, not_available)(ctx, command)
        outcomes[command.verb] = outcome
        failed = failed or outcome in UNSUCCESSFUL_OUTCOMES
    await tell_token_budget(ctx)
    if trigger.comment_id is not None and (admission.allowed or trigger.errors or failed):
        await react(ctx, "confused" if failed else "rocket")
    if admission.allowed:
        await collect_reactions(ctx)
    return outcomes


# Verbs that run the agent for the session, which starts by finding its todo comment.
AGENT_VERBS = frozenset({"create-service", "request", "plan", "answer", "retry"})


async def early_reads(ctx: JobContext) -> None:
    """Reads that do not wait for the repo's config, made alongside it: the sender's
    permission (cached in Redis for every worker, so `admit` finds it there) and the search
    for the session's todo comment (the forge keeps the answer for its first upsert)."""
    verbs = {c.verb for c in ctx.trigger.commands}
    prefetch = getattr(getattr(ctx.forge, "inner", ctx.forge), "prefetch_todo", None)
    if prefetch is not None and verbs & AGENT_VERBS:
        prefetch(ctx.repo, ctx.trigger.number, ctx.session_id)
    anyone = {"help", "status", "ask", "feedback"}  # and GitHub's own events: no one typed them
    if ctx.trigger.authorized_permission or not verbs - anyone - INTERNAL_VERBS:
        return
    with contextlib.suppress(ForgeError):  # `admit` asks again and says what went wrong
        await sender_permission(ctx)


def too_many_commands(ctx: JobContext) -> bool:
    """True when the comment holds more `/idp` lines than Settings.max_commands_per_comment."""
    trigger = ctx.trigger
    count = max(trigger.command_lines, len(trigger.commands) + len(trigger.errors))
    return count > ctx.settings.max_commands_per_comment


async def refuse_comment(ctx: JobContext) -> dict[str, str]:
    """A comment past the command budget: none of its commands runs (they are often meant
    together, and a part of them could do what none of them asked), one reply says why."""
    trigger = ctx.trigger
    count = max(trigger.command_lines, len(trigger.commands) + len(trigger.errors))
    limit = ctx.settings.max_commands_per_comment
    ctx.scope.command = "budget"
    await ctx.reply(
        f"This comment holds {count:,} `/idp` commands; one comment may hold at most {limit}, "
        "so none of them ran. Split them over several comments."
    )
    if trigger.comment_id is not None:
        await react(ctx, "confused")
    return {"commands": "too many"}


async def tell_token_budget(ctx: JobContext) -> None:
    """Once per installation and day: the model token budget is spent (the job's model hit
    it). The todo list of an agent run says it too."""
    notice = getattr(ctx.chat_model, "spent_notice", None)
    text = notice() if notice is not None else None
    if text:
        ctx.scope.command = "budget"
        await ctx.reply(text)


async def collect_reactions(ctx: JobContext) -> None:
    """Store 👍/👎 on the session's todo comment as feedback. GitHub sends no webhook for
    reactions, so every job that touches the session reads them; repeats are stored once."""
    session = ctx.store.get(ctx.session_id)
    if session is None or session.comment_id is None:
        return
    try:
        reactions = await ctx.forge.list_reactions(ctx.repo, session.comment_id)
    except ForgeError as exc:  # feedback is a courtesy: the next job reads them again
        log.warning("reactions on %s not read: %s", ctx.session_id, exc)
        return
    store = FeedbackStore(ctx.connection, ctx.settings)
    outcome = outcome_of(session)
    for login, content in reactions:
        if not login.lower().endswith("[bot]"):
            store.add_reaction(session.id, login, content, outcome=outcome)


async def react(ctx: JobContext, content: str) -> None:
    """A reaction on the triggering comment; a failure never fails the workflow."""
    try:
        await ctx.forge.add_reaction(ctx.repo, ctx.trigger.comment_id or 0, content)
    except ForgeError as exc:
        log.warning("reaction %s on %s failed: %s", content, ctx.session_id, exc)


async def load_config(ctx: JobContext) -> None:
    """`.github/idp-copilot.yml` of the repo over the org's (app/config_layers.py). An invalid
    file is left out and the error (which names the file and each bad key) is posted once per
    distinct error and repository."""
    catalog = TemplateSetCatalog.from_settings(ctx.settings)
    cache = RedisFileCache(ctx.connection, ctx.settings)
    result = await load_repo_config(ctx.forge, ctx.repo, ctx.tools(), catalog, cache)
    ctx.config, ctx.config_error, ctx.config_result = result.config, result.error, result
    if result.error is None:
        return
    log.info("invalid repo config in %s", ctx.repo.full_name)
    command, ctx.scope.command = ctx.scope.command, "config"
    try:
        await ctx.reply(
            result.error, once_key=("config-error", ctx.repo.full_name.lower(), result.error)
        )
    except ForgeError as exc:  # the work goes on with the defaults; the next job tries again
        log.warning("config error comment on %s failed: %s", ctx.repo.full_name, exc)
    finally:
        ctx.scope.command = command


async def not_available(ctx: JobContext, command: Command) -> str:
    await ctx.reply(
        f"`/idp {command.verb}` is not available yet. `/idp help` lists what works today."
    )
    return "answered"


HANDLERS: dict[str, Handler] = {
    "help": verbs.help_,
    "create-service": verbs.create_service,
    "request": verbs.create_service,
    "plan": verbs.plan,
    "answer": verbs.answer,
    "status": verbs.status,
    "retry": verbs.retry,
    "feedback": verbs.feedback,
    "ask": verbs.ask,
    "cancel": cancel,
    "apply": pr_commands.apply,
    "deploy": pr_commands.deploy,
    "merged": pr_commands.merged,
    "closed": namespace_wait.closed,
    "unlock": namespace_wait.unlock,
    "review": review.review,
    "set": review.set_values,
    "create-repo": create_repo.create_repo,
    "ci": ci.ci,
    "upgrade": upgrade_verb.upgrade,
    "sweep": sweep.sweep,
}
