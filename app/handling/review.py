"""The review loop on the App's pull requests: reviewers change the pull request by reviewing
it, and the App answers each thread.

`review` handles the internal verb the router gives a review, a line comment or a free-text
comment on a pull request; `set_values` handles `/idp set` in a comment. Both end in
`revise`: under the session's lock, once per review or comment, `/idp set` values are
re-rendered and merged into the branch's files (app/handling/revision.py), free text goes to the
review agent when there is a model (app/agent/review.py), and whatever changed is validated
and pushed as one commit on top of the branch. Each thread gets one answer; the todo comment
lists the revision; the check run runs on the new head.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import ValidationError
from redis.lock import Lock

from app.agent.outcomes import LoopGuardTripped
from app.agent.planner import public_text
from app.agent.providers.base import ProviderError
from app.agent.publisher import Publisher
from app.agent.review import Thread, review_tools, run_review_agent
from app.domain.service import ServiceRequest
from app.domain.session import Session, StepRecord
from app.domain.todo import Todo
from app.events import EventBus
from app.github.forge import PERMISSION_RANK, RepoRef
from app.grammar.commands import Command, escape_user_text
from app.handling import review_threads as say
from app.handling.agent_run import build_agent
from app.handling.authorize import sender_permission
from app.handling.preflight import may_write
from app.handling.revision import (
    RevisionStopped,
    Workspace,
    merge_rendering,
    publish,
    read_workspace,
    render,
    validate,
)
from app.repo_config import DEFAULT_PERMISSIONS, required_permission
from tools.spec import ToolContext, ToolError

if TYPE_CHECKING:
    from app.handling.context import JobContext

STEP_TOOL = "review_revision"


def linked_session(ctx: JobContext) -> Session | None:
    """The session whose pull request the trigger is on, or None for any other PR."""
    session = ctx.store.get(ctx.session_id)
    if session is None or session.pr_number != ctx.trigger.number or not session.branch:
        return None
    return session


def not_ours(ctx: JobContext) -> bool:
    """True for review feedback on a pull request the App did not open: the job drops it
    before any reaction, config read or GitHub call."""
    commands = ctx.trigger.commands
    return (
        bool(commands)
        and all(c.verb == "review" for c in commands)
        and not ctx.trigger.errors
        and linked_session(ctx) is None
    )


async def review(ctx: JobContext, command: Command) -> str:
    """A review (read whole: its body and every line comment) or a free-text comment."""
    if linked_session(ctx) is None:
        return "ignored"
    t = ctx.trigger
    if t.review_id is not None:
        found = await ctx.forge.get_review(ctx.repo, t.number, t.review_id)
        threads, key = say.threads_of_review(found), f"review:{found.id}"
    else:
        threads = [say.thread("T1", "comment", t.sender, command.text or "")]
        key = f"comment:{t.comment_id or t.delivery_id}"
    if not threads:
        return "ignored"
    if not await may_steer(ctx):
        return "refused"
    return await revise(ctx, key, threads)


async def set_values(ctx: JobContext, command: Command) -> str:
    """`/idp set KEY=VALUE …` in a comment on the App's pull request (or its issue)."""
    session = ctx.store.get(ctx.session_id)
    if session is None or session.pr_number is None or not session.branch:
        await ctx.reply(
            "`/idp set` changes a pull request the App opened; there is none here. Comment it "
            "on that pull request, or in a review of it."
        )
        return "answered"
    if not await may_steer(ctx):
        return "refused"
    t = ctx.trigger
    # Every `/idp set` line of the comment in one revision: one commit, one answer.
    values = {k: v for c in t.commands if c.verb == "set" for k, v in c.values.items()}
    thread = Thread(id="T1", kind="comment", author=t.sender, values=values)
    return await revise(ctx, f"set:{t.comment_id or t.delivery_id}", [thread])


def _stricter(a: str, b: str) -> str:
    return a if PERMISSION_RANK[a] >= PERMISSION_RANK[b] else b


async def may_steer(ctx: JobContext) -> bool:
    """Only reviewers with write permission (or what `reviewers.min_permission` and
    `permissions.review` ask for) steer the pull request; others are told once."""
    config = ctx.config
    needed = _stricter(required_permission(config, "review"), config.reviewers.min_permission)
    have = await sender_permission(ctx)
    if PERMISSION_RANK.get(have, 0) >= PERMISSION_RANK[needed]:
        return True
    why = (
        " (this repository's `.github/idp-copilot.yml` asks for it)"
        if needed != DEFAULT_PERMISSIONS["review"]
        else ""
    )
    await ctx.reply(
        f"Sorry {escape_user_text(ctx.trigger.sender)}, I change this pull request only for "
        f"reviewers with **{needed}** permission on this repository{why}, and you have "
        f"**{have}**. Your review stays for the people who can act on it.",
        once_key=("refused", ctx.session_id, ctx.trigger.sender.lower(), "review"),
    )
    return False


@dataclass
class Result:
    """What one revision did: an outcome word, one answer per thread, the commit."""

    outcome: str
    replies: dict[str, str]
    sha: str | None = None
    files: list[str] = field(default_factory=list)


async def revise(ctx: JobContext, key: str, threads: list[Thread]) -> str:
    """One revision per review or comment (`key`), under the session's lock; a redelivered
    or retried job posts the answers it still owes and changes nothing."""
    with ctx.store.lock(ctx.session_id) as lock:
        session = ctx.store.get(ctx.session_id)
        if session is None:
            return "ignored"
        # A failed revision is recorded too: the same review again must not retry it.
        step = next((s for s in session.steps if s.idempotency_key == key), None)
        outcome = "duplicate"
        if step is None and not await may_write(ctx, session, revision=True):
            ctx.store.save(session)  # the todo names the missing permission; nothing else
            return "failed"
        if step is None:
            started = time.time()
            result = await Revision(ctx, session, threads, lock).run()
            step = StepRecord(
                tool=STEP_TOOL,
                idempotency_key=key,
                ok=result.outcome != "failed",
                output={"outcome": result.outcome, "replies": result.replies, "sha": result.sha},
                started_at=started,
                finished_at=time.time(),
            )
            session.steps.append(step)
            ctx.store.save(session)
            repo = RepoRef.parse(session.repo, session.installation_id)
            if await Publisher(ctx.forge, ctx.settings).sync_todo(session, repo):
                ctx.store.save(session)
            outcome = result.outcome
        await say.answer_threads(ctx, session.id, key, threads, step.output.get("replies", {}))
        return outcome


class Revision:
    """The work of one revision on a loaded session (see module docstring)."""

    def __init__(self, ctx: JobContext, session: Session, threads: list[Thread], lock: Lock | None):
        self.ctx, self.session, self.threads, self.lock = ctx, session, threads, lock
        self.request = session.request
        self.ws = Workspace({}, {})
        self.by_values: list[str] = []
        self.gone: list[str] = []
        self.summary = ""
        self.notes: dict[str, str] = {}

    async def run(self) -> Result:
        ctx, threads = self.ctx, self.threads
        replies = {t.id: say.problems_note(t) for t in threads}
        values = {k: v for t in threads for k, v in t.values.items()}
        asking = [t for t in threads if t.free_text]
        if asking and ctx.chat_model is None:
            # One answer with the keys per review; chat on the pull request hears it once.
            first = asking[0]
            if first.kind != "comment" or ctx.once("keys", self.session.id, first.author.lower()):
                replies[first.id] = say.NO_MODEL_REPLY
            asking = []
        if not values and not asking:
            return Result("answered", replies)
        try:
            return await self._revise(values, asking, replies)
        except RevisionStopped as stop:
            for t in threads:
                if t.values or t.free_text:
                    replies[t.id] = stop.message
            return Result("failed", replies)

    async def _revise(
        self, values: dict[str, str], asking: list[Thread], replies: dict[str, str]
    ) -> Result:
        s = self.session
        if s.merged_at is not None:
            raise RevisionStopped("The pull request is merged; ask for a change in a new request.")
        self.ws = await read_workspace(self.ctx.forge, self.ctx.repo, s.branch or "", list(s.files))
        if values:
            self.by_values = await self.apply_values(values)
        by_agent: list[str] = []
        if asking:
            before = dict(self.ws.files)
            await self._ask_model(asking)
            by_agent = sorted(p for p, text in self.ws.files.items() if before.get(p) != text)
        changed = self.ws.changed()
        done = [t for t in self.threads if t.values or t.free_text]
        if not changed:
            s.request = self.request
            for t in done:
                replies[t.id] = say.unchanged_text(t, self.notes.get(t.id, self.summary))
            return Result("unchanged", replies)
        out = await publish(
            self.ctx, s.model_copy(update={"request": self.request}), self.ws, self._message(values)
        )
        sha, paths = str(out.get("head_sha") or ""), sorted(changed)
        short = f"`{sha[:7]}`"
        for t in done:
            note = self.notes.get(t.id, self.summary)
            replies[t.id] = say.done_text(t, short, by_agent, self.by_values, self.gone, note)
        self._record(sha, changed, values)
        return Result("revised", replies, sha, paths)

    async def apply_values(self, values: dict[str, str]) -> list[str]:
        """Re-render with `values` and merge the difference into the workspace."""
        if self.request is None:
            raise RevisionStopped(
                "This pull request was not generated from structured values, so `/idp set` has "
                "nothing to re-render; describe the change in a review comment instead."
            )
        try:
            new = ServiceRequest.model_validate({**self.request.model_dump(), **values})
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"]
            raise RevisionStopped(f"Those values do not fit together: {problem}.") from None
        old_files = await render(self.ctx, self.session, self.request)
        new_files = await render(self.ctx, self.session, new)
        changed, gone = merge_rendering(self.ws, old_files, new_files)
        self.request = new
        self.gone = sorted({*self.gone, *gone})
        return changed

    async def _ask_model(self, asking: list[Thread]) -> None:
        ctx = self.ctx

        async def set_for_agent(values: dict[str, str]) -> list[str]:
            try:
                return await self.apply_values(values)
            except RevisionStopped as stop:
                raise ToolError(stop.message) from None

        tools = review_tools(self.threads, self.notes, set_for_agent, validate)
        tool_ctx = ToolContext(settings=ctx.settings, session=self.session, files=self.ws.files)
        try:
            answer = await run_review_agent(
                ctx.chat_model,  # type: ignore[arg-type]
                asking,
                tool_ctx,
                tools,
                self.notes,
                pr_number=ctx.trigger.number,
                renew=self.lock.reacquire if self.lock is not None else (lambda: None),
            )
        except LoopGuardTripped as exc:
            raise RevisionStopped(
                f"I stopped before finishing, so nothing was pushed: {exc.reason.split('. ')[0]}. "
                "Ask for a smaller change, or use `/idp set KEY=VALUE`."
            ) from None
        except ProviderError as exc:
            raise RevisionStopped(f"Nothing was pushed: the language model failed: {exc}") from None
        usage = self.session.token_usage
        usage["input_tokens"] = usage.get("input_tokens", 0) + answer.input_tokens
        usage["output_tokens"] = usage.get("output_tokens", 0) + answer.output_tokens
        usage["model_calls"] = usage.get("model_calls", 0) + answer.model_calls
        self.summary = answer.summary

    def _message(self, values: dict[str, str]) -> str:
        who = self.ctx.trigger.sender
        what = f"Set {', '.join(f'{k}={v}' for k, v in values.items())}" if values else ""
        if self.summary.strip():
            what = (
                f"{what}; {public_text(self.summary, 120)}"
                if what
                else public_text(self.summary, 120)
            )
        where = f"{self.session.repo}#{self.ctx.trigger.number}"
        return f"{what or 'Revise the generated files'}\n\nAsked in a review by {who} on {where}."

    def _record(self, sha: str, changed: dict[str, str], values: dict[str, str]) -> None:
        s = self.session
        # The workspace follows the branch (human commits included), so the digests the
        # todo shows are those of what is there now; an approval of other files is void.
        s.files.update(self.ws.files)
        s.request = self.request
        s.head_sha = sha
        if s.todo is None:
            s.todo = Todo(title=f"Request #{s.number}")
        what = f"set {say.values_text(values)}" if values else ""
        if self.summary.strip():
            said = public_text(self.summary, 160)
            what = f"{what}; {said}" if what else said
        kind = "review" if self.ctx.trigger.review_id is not None else "comment"
        who = escape_user_text(self.ctx.trigger.sender)
        count = f"{len(changed)} file{'s' if len(changed) != 1 else ''}"
        s.todo.revisions.append(f"`{sha[:7]}` {what} ({count}; {kind} by {who})")
        build_agent(self.ctx, s).gate_approvals(s)
        EventBus(self.ctx.connection, self.ctx.settings).sink(s.id)(
            "revision", {"sha": sha, "files": sorted(changed), "by": self.ctx.trigger.sender}
        )
