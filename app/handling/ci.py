"""CI on the App's pull requests: a failed workflow run (or another app's check suite) on the
App's head commit is shown in the todo with the failing workflow, job and step; with a
language model the App reads the failed job's log and pushes a validated fix commit on the
same branch, at most `ci.max_attempts` for a failing commit and the fixes after it, then
stops and says what it tried. Without one, `/idp retry` re-runs the failed jobs.

The router gives the internal verb `ci` (app/webhooks.py); everything here runs in the job,
under the session's lock, once per run attempt or check suite (`CiEvent.key`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from redis.lock import Lock

from app.agent.ci_fix import fix_message, fix_tools, run_ci_fix_agent
from app.agent.outcomes import LoopGuardTripped
from app.agent.planner import public_text, title_for
from app.agent.providers.base import ProviderError
from app.agent.publisher import Publisher
from app.domain.ci import CiEvent, CiFailure, CiJob, CiRecord, failure_lines
from app.domain.session import Session, StepRecord
from app.domain.todo import Todo
from app.github.errors import ForgeError
from app.github.forge import RepoRef
from app.grammar.commands import Command
from app.handling.review import linked_session
from app.handling.revision import RevisionStopped, Workspace, publish, read_workspace, validate
from app.redaction import redact
from app.untrusted import inline_markdown
from tools.spec import ToolContext

if TYPE_CHECKING:
    from app.handling.context import JobContext

log = logging.getLogger(__name__)

STEP_TOOL = "ci"
# The tail of a failed job's log the model reads: where the error usually is.
LOG_LIMIT = 64 * 1024
# Logs read per failure (the first failed jobs); the rest are named only.
LOGS_PER_FAILURE = 2
# Head commits whose CI the todo shows, newest last.
SHOWN_HEADS = 3


def _link(url: str) -> str:
    """`url` when it is a plain https URL that cannot break out of a markdown link."""
    plain = url.startswith("https://") and not any(c in url for c in " \t\n()<>[]\"'`")
    return url[:500] if plain else ""


def _name(text: str | None, limit: int = 100) -> str:
    return inline_markdown(text or "", limit).replace("[", "\\[").replace("]", "\\]")


async def _jobs(ctx: JobContext, event: CiEvent) -> list[CiJob]:
    if event.kind != "workflow_run" or event.run_id is None:
        return []
    try:
        return await ctx.forge.list_run_jobs(ctx.repo, event.run_id)
    except ForgeError as exc:  # the failure is still reported, without its jobs
        log.warning("jobs of run %s on %s not read: %s", event.run_id, ctx.repo.full_name, exc)
        return []


def _failure(event: CiEvent, jobs: list[CiJob], session: Session) -> CiFailure:
    """What the todo shows of one failed run: workflow, then each failed job and step."""
    if event.kind == "check_suite":
        checks = f"{session.pr_url}/checks" if session.pr_url else ""
        return CiFailure(kind=event.kind, name=f"{_name(event.app_slug)} checks", html_url=checks)
    failed = [j for j in jobs if j.failed]
    return CiFailure(
        kind=event.kind,
        name=_name(event.name) or "workflow",
        html_url=_link(event.html_url),
        run_id=event.run_id,
        jobs=[
            (_name(j.name), _name(s[0].name) if (s := j.failed_steps()) else "", _link(j.html_url))
            for j in failed
        ],
    )


def show(session: Session) -> None:
    """The todo's CI section: the last few head commits' failures and the fixes tried."""
    if session.todo is None:
        session.todo = Todo(title=title_for(session))
    lines: list[str] = []
    for sha, record in list(session.ci.items())[-SHOWN_HEADS:]:
        head = f"`{sha[:7]}`" + (" (the head)" if sha == session.head_sha else "")
        if not record.failures:
            continue
        lines += [f"{head}: {line}" for line in failure_lines(record)]
        if record.fixed_by:
            lines.append(f"{head}: 🔧 {record.tried[-1]}" if record.tried else f"{head}: 🔧")
        elif record.stopped:
            lines.append(f"{head}: ⏹️ no more fixes; `/idp retry` re-runs the failed jobs")
    session.todo.ci = lines


async def ci(ctx: JobContext, command: Command) -> str:
    """A failed run or check suite on the App's pull request (see the module docstring)."""
    event = ctx.trigger.ci
    if event is None or linked_session(ctx) is None:
        return "ignored"
    own = event.app_id is not None and str(event.app_id) == str(ctx.settings.github_app_id)
    if event.kind == "check_suite" and own:
        return "ignored"  # the App's own validation check run: its todo says so already
    with ctx.store.lock(ctx.session_id) as lock:
        session = ctx.store.get(ctx.session_id)
        if session is None or session.branch != event.head_branch or session.merged_at:
            return "ignored"
        key = event.key()
        if any(s.idempotency_key == key for s in session.steps):
            return "duplicate"
        if session.head_sha != event.head_sha:
            return "ignored"  # not the App's head commit: someone pushed since, or it is old
        started = time.time()
        record = session.ci.setdefault(event.head_sha, CiRecord())
        jobs = await _jobs(ctx, event)
        failure = _failure(event, jobs, session)
        record.failures = [
            f for f in record.failures if f.run_id is None or f.run_id != event.run_id
        ]
        record.failures.append(failure)
        outcome = await _act(ctx, session, record, event, jobs, lock)
        session.steps.append(
            StepRecord(
                tool=STEP_TOOL,
                idempotency_key=key,
                ok=True,
                output={"outcome": outcome, "head_sha": event.head_sha},
                started_at=started,
                finished_at=time.time(),
            )
        )
        show(session)
        ctx.store.save(session)
        repo = RepoRef.parse(session.repo, session.installation_id)
        if await Publisher(ctx.forge, ctx.settings).sync_todo(session, repo):
            ctx.store.save(session)
    await _say(ctx, session, record, event, outcome)
    return outcome


async def _act(
    ctx: JobContext,
    session: Session,
    record: CiRecord,
    event: CiEvent,
    jobs: list[CiJob],
    lock: Lock,
) -> str:
    """Report only, or try one fix; the outcome word."""
    fixable = event.kind == "workflow_run" and any(j.failed for j in jobs)
    wanted = ctx.config.ci.fix and ctx.config.ci.max_attempts > 0
    if ctx.chat_model is None or not wanted or not fixable:
        return "reported"
    if record.attempts >= ctx.config.ci.max_attempts:
        record.stopped = True
        return "stopped"
    return await CiFix(ctx, session, record, event, jobs, lock).run()


async def _say(
    ctx: JobContext, session: Session, record: CiRecord, event: CiEvent, outcome: str
) -> None:
    """One comment on the pull request per failing head commit: what failed, and what the
    App did or what a person can do."""
    lines = "\n".join(f"- {line}" for line in failure_lines(record))
    sha = f"`{event.head_sha[:7]}`"
    if outcome == "fixed":
        text = f"CI failed on {sha}:\n\n{lines}\n\nI pushed a fix: {record.tried[-1]}"
    elif outcome == "stopped":
        tried = "\n".join(f"- {t}" for t in record.tried) or "- nothing"
        text = (
            f"CI still fails on {sha}:\n\n{lines}\n\nI stop here after "
            f"{record.attempts} fix attempt{'s' if record.attempts != 1 else ''}. What I "
            f"tried:\n{tried}\n\nThe rest is yours; `/idp retry` re-runs the failed jobs."
        )
    elif outcome == "unfixed":
        text = f"CI failed on {sha}:\n\n{lines}\n\nI did not push a fix: {record.tried[-1]}"
    else:
        text = f"CI failed on {sha}:\n\n{lines}\n\n`/idp retry` re-runs the failed jobs."
    try:
        await ctx.reply(text, once_key=("ci", session.id, event.head_sha, outcome, record.attempts))
    except ForgeError as exc:  # the todo says it too
        log.warning("CI comment on %s not posted: %s", session.id, exc)


class CiFix:
    """One fix attempt for a failed run on the App's head commit."""

    def __init__(
        self,
        ctx: JobContext,
        session: Session,
        record: CiRecord,
        event: CiEvent,
        jobs: list[CiJob],
        lock: Lock | None,
    ) -> None:
        self.ctx, self.session, self.record, self.event = ctx, session, record, event
        self.jobs, self.lock = [j for j in jobs if j.failed], lock

    async def run(self) -> str:
        record = self.record
        record.attempts += 1
        # Counted before the model runs: a job killed mid-fix and run again counts it too.
        self.ctx.store.save(self.session)
        n = f"Attempt {record.attempts}"
        s = self.session
        ws = await read_workspace(self.ctx.forge, self.ctx.repo, s.branch or "", list(s.files))
        # The review loop's rule: what a person changed on the branch is theirs. Only files
        # still as the App last wrote them may be edited.
        editable = {p: t for p, t in ws.files.items() if s.files.get(p) == t}
        read_only = {p: t for p, t in ws.files.items() if p not in editable}
        tool_ctx = ToolContext(settings=self.ctx.settings, session=s, files=dict(editable))
        message = fix_message(
            self._what_failed(), await self._logs(), editable, read_only, self.ctx.trigger.number
        )
        try:
            answer = await run_ci_fix_agent(
                self.ctx.chat_model,  # type: ignore[arg-type]
                tool_ctx,
                fix_tools(validate),
                message,
                renew=self.lock.reacquire if self.lock is not None else (lambda: None),
            )
        except LoopGuardTripped as exc:
            record.tried.append(f"{n}: stopped before finishing ({exc.reason.split('. ')[0]}).")
            return "unfixed"
        except ProviderError as exc:
            record.tried.append(f"{n}: the language model failed ({public_text(str(exc), 120)}).")
            return "unfixed"
        usage = s.token_usage
        usage["input_tokens"] = usage.get("input_tokens", 0) + answer.input_tokens
        usage["output_tokens"] = usage.get("output_tokens", 0) + answer.output_tokens
        usage["model_calls"] = usage.get("model_calls", 0) + answer.model_calls
        said = public_text(answer.summary, 160) or "no explanation"
        changed = {p: t for p, t in tool_ctx.files.items() if editable.get(p) != t}
        if not changed:
            record.tried.append(f"{n}: no file changed; the model said: {said}")
            return "unfixed"
        result = Workspace(base=ws.base, files={**ws.files, **changed})
        try:
            out = await publish(self.ctx, s, result, self._commit_message(said))
        except RevisionStopped as stop:
            record.tried.append(f"{n}: not pushed. {stop.message.splitlines()[0]}")
            return "unfixed"
        sha = str(out.get("head_sha") or "")
        paths = ", ".join(f"`{p}`" for p in sorted(changed))
        record.tried.append(f"{n}: `{sha[:7]}` changed {paths}: {said}")
        record.fixed_by = sha
        s.files.update(changed)
        s.head_sha = sha
        # The fix commit carries the attempts made so far: a failure on it counts on.
        s.ci[sha] = CiRecord(attempts=record.attempts, tried=list(record.tried))
        return "fixed"

    def _what_failed(self) -> str:
        e = self.event
        lines = [f"Workflow {e.name or 'run'} (run {e.run_id}, attempt {e.run_attempt})"]
        for job in self.jobs:
            steps = ", ".join(f"step {st.number} {st.name!r}" for st in job.failed_steps())
            lines.append(f"- job {job.name!r} failed" + (f" at {steps}" if steps else ""))
        return "\n".join(lines)

    async def _logs(self) -> str:
        """The tails of the first failed jobs' logs, secrets redacted."""
        parts = []
        for job in self.jobs[:LOGS_PER_FAILURE]:
            try:
                text = await self.ctx.forge.job_log_tail(self.ctx.repo, job.id, LOG_LIMIT)
            except ForgeError as exc:
                text = f"(the log could not be read: {exc})"
            parts.append(f"## job {job.name}\n{text}")
        return redact("\n\n".join(parts), self.ctx.settings.secret_values())

    def _commit_message(self, said: str) -> str:
        e = self.event
        return (
            f"Fix CI: {said}\n\nWorkflow {e.name or 'run'} failed on {e.head_sha[:7]} "
            f"(run {e.run_id}); fix attempt {self.record.attempts} of at most "
            f"{self.ctx.config.ci.max_attempts}."
        )


async def retry_checks(ctx: JobContext, session: Session) -> str | None:
    """`/idp retry` with no failed step: re-run the failed jobs of the workflow runs that
    failed on the App's head commit; None when there are none."""
    record = session.ci.get(session.head_sha or "")
    runs = [f for f in (record.failures if record else []) if f.run_id is not None]
    if not runs:
        return None
    done, problems = [], []
    for failure in runs:
        try:
            await ctx.forge.rerun_failed_jobs(ctx.repo, failure.run_id or 0)
            done.append(
                f"[{failure.name}]({failure.html_url})" if failure.html_url else failure.name
            )
        except ForgeError as exc:
            problems.append(f"{failure.name}: {exc}")
    text = f"Re-running the failed jobs of {', '.join(done)}." if done else ""
    if problems:
        text += "\n\nI could not re-run:\n" + "\n".join(f"- {p}" for p in problems)
    await ctx.reply(text.strip())
    return "retried" if done else "failed"
