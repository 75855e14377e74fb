"""Review threads: where a reviewer spoke (the review body, each line comment, a comment on the
pull request) and the one answer each gets.

For app/handling/review.py: parse a review into `Thread`s, word the answers, and post each answer
once. Answers name people without @-mentions and quote nothing a reviewer wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.agent.planner import public_text
from app.agent.publisher import fit_comment
from app.agent.review import Thread
from app.domain.session import Session
from app.github.forge import Review
from app.grammar.commands import SET_KEYS, escape_user_text, parse_comment
from app.redaction import redact
from app.untrusted import MAX_BODY_CHARS

if TYPE_CHECKING:
    from app.handling.context import JobContext

NO_MODEL_REPLY = (
    "I change this pull request when a review or comment says what to set: "
    "`/idp set KEY=VALUE …` (several pairs on one line are one commit), for example "
    "`/idp set replicas=3 memory_limit=512Mi`. Reviews in free text need a language model, "
    "and this installation runs without one (an operator can set `IDP_LLM_PROVIDER`).\n\n"
    f"Keys: {', '.join(f'`{k}`' for k in SET_KEYS)}."
)


def _without_commands(body: str) -> str:
    return "\n".join(
        line for line in body.splitlines() if not line.strip().lower().startswith("/idp")
    ).strip()


def thread(thread_id: str, kind: str, author: str, body: str, **where: object) -> Thread:
    """One thread from what a reviewer wrote: its `/idp set` values, bad `/idp` lines, other
    commands (which a review does not run) and the words around them."""
    body = body[:MAX_BODY_CHARS]  # GitHub's limit; the rest is never read
    commands, errors = parse_comment(body)
    values: dict[str, str] = {}
    ignored: list[str] = []
    for command in commands:
        if command.verb == "set":
            values.update(command.values)
        else:
            ignored.append(command.line)
    return Thread(
        id=thread_id,
        kind=kind,  # type: ignore[arg-type]
        author=author,
        text=_without_commands(body),
        values=values,
        errors=[e.message for e in errors],
        ignored_commands=ignored,
        **where,  # type: ignore[arg-type]
    )


def threads_of_review(review: Review) -> list[Thread]:
    """The review body (when it says anything) and each line comment by a person. A reply
    in a thread is answered in that thread: GitHub takes replies to its first comment."""
    threads: list[Thread] = []
    if review.body.strip():
        threads.append(thread("T1", "review", review.author, review.body))
    for comment in review.comments:
        if comment.author.endswith("[bot]"):
            continue
        threads.append(
            thread(
                f"T{len(threads) + 1}",
                "line",
                comment.author,
                comment.body,
                reply_to=comment.in_reply_to or comment.id,
                path=comment.path,
                line=comment.line,
                diff_hunk=comment.diff_hunk,
            )
        )
    return threads


def problems_note(t: Thread) -> str:
    """What the thread asked that cannot run: bad `/idp` lines, commands a review ignores."""
    notes = []
    if t.errors:
        notes.append("I could not read this:\n" + "\n".join(f"- {e}" for e in t.errors))
    if t.ignored_commands:
        shown = ", ".join(escape_user_text(c, 40) for c in t.ignored_commands)
        notes.append(
            f"Only `/idp set` runs from a review; comment {shown} on the pull request instead."
        )
    return "\n\n".join(notes)


def with_problems(t: Thread, text: str) -> str:
    """`text`, then what the thread asked that cannot run (either may be empty)."""
    return "\n\n".join(part for part in (text, problems_note(t)) if part)


def values_text(values: dict[str, str]) -> str:
    return ", ".join(f"`{k}={escape_user_text(v, 60)[1:-1]}`" for k, v in values.items())


def files_text(paths: list[str], limit: int = 8) -> str:
    shown = ", ".join(f"`{p}`" for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def done_text(
    t: Thread, short: str, changed: list[str], by_values: list[str], gone: list[str], note: str
) -> str:
    """The answer to a thread whose revision was pushed as commit `short`."""
    elsewhere = f"the review's other changes are in {short}"
    if t.values and not by_values:
        text = f"{values_text(t.values)} needed no file change; {elsewhere}."
    elif t.values:
        text = f"Done in {short}: set {values_text(t.values)}, which changed "
        text += f"{files_text(by_values)}."
        if gone:
            text += (
                f" The new values no longer generate {files_text(gone)}; I left them in place: "
                "delete them in a commit if they are not needed."
            )
    elif t.free_text:
        said = public_text(note, 600) if note.strip() else "I revised the files."
        if changed:
            text = f"{said}\n\nCommitted as {short}: changed {files_text(changed)}."
        else:
            text = f"{said}\n\nNo file changed for this comment; {elsewhere}."
    else:
        text = ""
    return with_problems(t, text)


def unchanged_text(t: Thread, note: str) -> str:
    """The answer when the revision left every file as it was."""
    if t.values:
        text = f"Nothing to change: the files already match {values_text(t.values)}."
    elif t.free_text:
        said = public_text(note, 600) if note.strip() else "I found nothing to change."
        text = f"{said}\n\nNo file changed, so there is no new commit."
    else:
        text = ""
    return with_problems(t, text)


def framed(t: Thread, text: str) -> str:
    """The reply as posted: a review body is answered in the conversation, so say which."""
    if t.kind == "review":
        return f"About the review by {escape_user_text(t.author)}:\n\n{text}"
    return text


async def answer_threads(
    ctx: JobContext, session_id: str, key: str, threads: list[Thread], replies: dict[str, str]
) -> None:
    """One reply per thread, each posted once: a line comment in its thread, the review
    body and conversation comments as a comment on the pull request."""
    holder = Session(id=session_id, repo=ctx.trigger.repo, number=ctx.trigger.number)
    for t in threads:
        text = replies.get(t.id)
        if not text:
            continue
        body = fit_comment(redact(framed(t, text), ctx.settings.secret_values()), holder)
        once = ("review-reply", session_id, key, t.id)
        if t.kind != "line" or t.reply_to is None:
            await ctx.reply(body, once_key=once)
            continue
        if not ctx.once(*once):
            continue
        try:
            await ctx.forge.reply_to_review_comment(ctx.repo, ctx.trigger.number, t.reply_to, body)
        except Exception:
            ctx.forget(*once)  # not posted: the job's retry posts it
            raise
