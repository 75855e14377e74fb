"""Handlers of the conversation verbs: help, create-service (and free-text requests), plan,
answer, status, retry, feedback and ask. Each takes the job's context and one command and
returns an outcome word for the job's result (and the 🚀 / 😕 reaction).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.agent.ask import answer_from_guidelines
from app.agent.planner import answer_question
from app.agent.progress import retry_failed
from app.domain.session import Session
from app.feedback import FeedbackStore, outcome_of
from app.github.forge import PERMISSION_RANK
from app.grammar.commands import HELP_TEXT, USER_VERBS, Command, escape_user_text
from app.handling.agent_run import run_agent, with_defaults
from app.handling.authorize import sender_permission
from app.handling.cancel import resume_after_cancel
from app.handling.ci import retry_checks
from app.handling.languages import language_problem, set_languages
from app.repo_config import required_permission

if TYPE_CHECKING:
    from app.handling.context import JobContext

NO_REQUEST = (
    "There is no request on this issue yet. Start one with "
    "`/idp create-service NAME --lang python` (`/idp help` lists the options)."
)


async def help_(ctx: JobContext, command: Command) -> str:
    """The command table and what this sender may run here."""
    have = await sender_permission(ctx)
    allowed = [
        verb
        for verb in USER_VERBS
        if PERMISSION_RANK.get(have, 0) >= PERMISSION_RANK[required_permission(ctx.config, verb)]
        or required_permission(ctx.config, verb) == "read"
    ]
    body = (
        f"{HELP_TEXT}\n\nYour permission here: **{have}**. "
        f"You may run: {', '.join(f'`{v}`' for v in allowed)}.\n\n{permission_table(ctx)}"
    )
    await ctx.reply(body)
    return "answered"


def permission_table(ctx: JobContext) -> str:
    """What each command needs here, merged from the built-in defaults, the org's `.github`
    file and this repository's file, and which of them set it."""
    result = ctx.config_result
    rows = []
    for verb in USER_VERBS:
        key = f"permissions.{verb}"
        origin = result.origin_markdown(key) if result is not None else "built-in default"
        rows.append(f"| `{verb}` | {required_permission(ctx.config, verb)} | {origin} |")
    return (
        "**Who may run what here** (the settings in force):\n\n"
        "| command | needs | set by |\n| --- | --- | --- |\n" + "\n".join(rows)
    )


async def create_service(ctx: JobContext, command: Command) -> str:
    """Plan and build the requested service; the same request again resumes the session."""
    if command.service is not None:
        language = with_defaults(command.service, ctx.config).language
        where = "--lang" if command.service.language else "defaults.language"
        problem = language_problem(language, where, await set_languages(ctx))
        if problem is not None:
            await ctx.reply(problem)
            return "refused"

    def prepare(session: Session) -> None:
        resume_after_cancel(session)
        if command.service is not None:
            request = with_defaults(command.service, ctx.config)
            old = session.request
            if request.language is None and old is not None and old.name == request.name:
                # the language came from `/idp answer`: asking again would be absurd
                request = request.model_copy(update={"language": old.language})
            if old != request:
                session.request = request
                _start_over(session)
        if command.verb == "request" and session.request_text != command.text:
            session.request_text = command.text
            _start_over(session)
        session.command = command.verb
        session.requester = session.requester or ctx.trigger.sender

    return await run_agent(ctx, prepare)


def _start_over(session: Session) -> None:
    """A different request: a new plan, new files, and any approval given is void."""
    session.todo = None
    session.files = {}
    session.messages = []
    session.clear_approvals()
    session.status = "new"


async def plan(ctx: JobContext, command: Command) -> str:
    """Re-plan and re-render from the stored request. The pull request gets a new commit
    only when a file changed (the publisher's step is reused when nothing did)."""
    session = ctx.store.get(ctx.session_id)
    if session is None or (session.request is None and session.request_text is None):
        await ctx.reply(NO_REQUEST)
        return "answered"

    def prepare(s: Session) -> None:
        resume_after_cancel(s)
        s.files = {}
        s.clear_approvals()  # new content needs a new approval
        s.status = "new"
        if ctx.chat_model is not None or s.todo is None:
            s.todo, s.messages = None, []
        else:
            s.todo.tasks = []  # the rules planner plans again; notes and meta are kept
            s.todo.open_questions = []

    return await run_agent(ctx, prepare)


async def answer(ctx: JobContext, command: Command) -> str:
    """`/idp answer TEXT`: close the open question and resume the same session."""
    session = ctx.store.get(ctx.session_id)
    if session is None or session.todo is None or not session.todo.open_questions:
        await ctx.reply("There is no open question here. `/idp status` shows where things are.")
        return "answered"
    offered = await set_languages(ctx)

    def prepare(s: Session) -> bool:
        if s.todo is None or not s.todo.open_questions:
            return False  # another answer got here first
        resume_after_cancel(s)
        answer_question(s, command.text or "", ctx.trigger.sender, offered.languages)
        s.status = "new"
        return True

    return await run_agent(ctx, prepare)


async def retry(ctx: JobContext, command: Command) -> str:
    """`/idp retry`: the failed (and blocked) steps run again; done steps are not repeated."""
    session = ctx.store.get(ctx.session_id)
    stuck = ("failed", "blocked", "running")
    if (
        session is None
        or session.todo is None
        or not (
            any(t.status in stuck for t in session.todo.tasks)
            or session.status in ("failed", "cancelled")
        )
    ):
        checks = await retry_checks(ctx, session) if session is not None else None
        if checks is not None:
            return checks  # no failed step, but CI failed on the App's pull request
        await ctx.reply("Nothing failed here, so there is nothing to retry.")
        return "answered"

    def prepare(s: Session) -> None:
        resume_after_cancel(s)
        retry_failed(s)

    return await run_agent(ctx, prepare)


def status_text(session: Session | None) -> str:
    """The `/idp status` answer: where the session is and what it waits for."""
    if session is None:
        return "No IDP Copilot session here yet. `/idp help` lists commands."
    tasks = session.todo.tasks if session.todo else []
    done = sum(1 for t in tasks if t.status in ("done", "skipped"))
    lines = [f"Session `{session.id}` is **{session.status}**: {done}/{len(tasks)} tasks done."]
    waiting = [t.title for t in tasks if t.status == "waiting_approval"]
    failed = [t.title for t in tasks if t.status in ("failed", "blocked")]
    if waiting:
        lines.append(f"- 🔒 Waiting for `/idp apply` from a maintainer: {', '.join(waiting)}.")
    if failed:
        lines.append(f"- ❌ Failed: {', '.join(failed)}. `/idp retry` runs them again.")
    for question in session.todo.open_questions if session.todo else []:
        lines.append(f"- ❓ {question}")
    if session.pr_url:
        merged = " (merged)" if session.merged_at else ""
        lines.append(f"- Pull request: #{session.pr_number}{merged}.")
    return "\n".join(lines)


async def status(ctx: JobContext, command: Command) -> str:
    await ctx.reply(status_text(ctx.store.get(ctx.session_id)))
    return "answered"


async def feedback(ctx: JobContext, command: Command) -> str:
    """Store the feedback with the session's outcome; the 🚀 reaction says it arrived."""
    session = ctx.store.get(ctx.session_id)
    t = ctx.trigger
    dedupe = f"comment:{t.repo}:{t.comment_id}" if t.comment_id else f"delivery:{t.delivery_id}"
    FeedbackStore(ctx.connection, ctx.settings).add(
        ctx.session_id,
        t.sender,
        text=command.text,
        source="command",
        outcome=outcome_of(session) if session is not None else None,
        dedupe_key=dedupe,
    )
    return "stored"


async def ask(ctx: JobContext, command: Command) -> str:
    """Answer from the platform guidelines (and the repo's own, when the session has them)."""
    from tools.builtin.knowledge import knowledge_base_for

    session = ctx.store.get(ctx.session_id)
    question = command.text or ""
    kb = knowledge_base_for(session.files if session is not None else {})
    result = await answer_from_guidelines(
        question, kb, ctx.chat_model, ctx.settings.secret_values()
    )
    await ctx.reply(f"> {escape_user_text(question, 200)}\n\n{result.text}")
    return "answered"
