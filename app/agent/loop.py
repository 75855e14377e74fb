"""The agent engine: plan first, then decide → act → observe → re-plan, checkpointing each step.

`Agent` is the one step runner; a `Strategy` (app/agent/engine.py) decides its steps:
`RulesStrategy` here, `ModelStrategy` in app/agent/model_loop.py.

Without a model the `rules` planner writes the todo and the loop runs its ready tasks (all
dependencies done), independent ones concurrently. With a model, the model plans through
`write_todo` and picks the calls. Either way the same rules hold: side effects are keyed and
never repeated, approval-gated tools wait for `/idp apply`, the loop guard ends every run,
and typed outcomes (app/agent/outcomes.py) become a status and a line in the todo, here.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from app.agent.approval import CallScope, approved_workspace, refresh, scope_of
from app.agent.change_plan import plan_waiting, planner, shown_plan
from app.agent.engine import EventSink, RunState, Steps, Strategy
from app.agent.guard import GuardLimits, LoopGuard, idempotency_key
from app.agent.model_loop import ModelStrategy
from app.agent.namespace_gate import hold_namespace
from app.agent.outcomes import (
    AgentOutcome,
    Cancelled,
    LoopGuardTripped,
    NamespaceLocked,
    NeedsApproval,
    QuestionForRequester,
    ReplyToRequester,
)
from app.agent.planner import free_text_reply, plan_create_service, title_for
from app.agent.progress import (
    APPROVAL_WAIT,
    block_dependents,
    final_status,
    gate_approvals,
    merge_output,
    ready_tasks,
)
from app.agent.providers.base import ChatModel, ProviderError, ToolCall
from app.agent.publisher import Publisher
from app.audit import scrub
from app.cancel_flag import CancelFlag
from app.config import Settings
from app.domain.service import LANGUAGES
from app.domain.session import StepRecord
from app.domain.todo import Task, Todo
from app.github.forge import Forge, ForgeError, RepoRef
from app.locks.namespace import NamespaceLocks
from app.state import Session, SessionStore
from app.untrusted import neutralize_mentions
from tools.registry import ToolRegistry, ToolResult
from tools.spec import ToolContext, ToolError, ToolSpec

log = logging.getLogger(__name__)


class RulesStrategy:
    """Plans with the rules planner (a structured request only), then runs the todo's ready
    tasks in waves (`Agent.run_ready`). `languages`: the repository's template set's."""

    def __init__(self, languages: Sequence[str] = LANGUAGES) -> None:
        self.languages = tuple(languages)

    async def drive(self, steps: Steps, run: RunState) -> None:
        s = run.session
        if s.todo is None or not s.todo.tasks:
            if s.request is None:
                raise ReplyToRequester(free_text_reply())
            previous = s.todo
            s.todo = plan_create_service(s.request, s.id, steps.registry, self.languages)
            if previous is not None:
                s.todo.notes = [*previous.notes, *s.todo.notes]
            steps.gate_approvals(s)
            steps.emit("todo", {"todo": s.todo.model_dump()})
            await steps.boundary(run)
        await steps.run_ready(run)


class Agent:
    """Runs one session to its next stop: done, failed, waiting (approval or an answer)."""

    def __init__(
        self,
        settings: Settings,
        registry: ToolRegistry,
        forge: Forge,
        store: SessionStore,
        chat_model: ChatModel | None = None,
        cluster: Any = None,
        on_event: EventSink | None = None,
        *,
        publisher: Publisher | None = None,
        limits: GuardLimits | None = None,
        allowed_tools: list[str] | None = None,
        approval_tools: Iterable[str] = (),
        tool_args: dict[str, dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        strategy: Strategy | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.forge = forge
        self.store = store
        self.chat_model = chat_model
        # The rules without a model; a model plans and picks the calls when there is one.
        self.strategy: Strategy = strategy or (
            RulesStrategy() if chat_model is None else ModelStrategy(chat_model)
        )
        self.cluster = cluster
        self.on_event = on_event
        self.publisher = publisher or Publisher(forge, settings)
        self.limits = limits or GuardLimits()
        self.allowed = (
            None if allowed_tools is None else {s.name for s in registry.specs(allowed_tools)}
        )
        self.approval_tools = {registry.get(n).name for n in approval_tools if n in registry}
        # Arguments the repository's config fixes (draft PRs, manifests path, staging
        # namespace): they win over what the planner or the model chose.
        self.tool_args = {
            registry.get(n).name: dict(v) for n, v in (tool_args or {}).items() if n in registry
        }
        self.clock = clock
        self.cancel_flag = CancelFlag(store.redis, store.settings)
        self.namespace_locks = NamespaceLocks(store.redis, store.settings)
        self._lock_waits: set[str] = set()  # tasks of this run waiting for a namespace lock
        self._event_tasks: set[asyncio.Future[Any]] = set()

    # -- the run and its outcomes ---------------------------------------------------------

    async def run(self, session: Session, lock: Any = None) -> Session:
        """Carry the session as far as it can go now; checkpointed after every step."""
        if session.status == "cancelled":
            return session
        # A flag from a cancel before a new command resumed this session is stale; a cancel
        # that comes now also stops this job (jobs/cancel.py).
        self.cancel_flag.clear(session.id)
        run = RunState(
            session,
            RepoRef.parse(session.repo, session.installation_id),
            LoopGuard.from_limits(self.limits, self.clock),
            lock,
        )
        run.steps.begin(session)
        self._set_status(session, "running")
        try:
            await self.strategy.drive(self, run)
            self._set_status(session, final_status(session.todo))
        except AgentOutcome as outcome:
            await self._handle(run, outcome)
        except ProviderError as exc:
            self.note(session, f"⚠️ The language model failed: {exc}. Comment `/idp retry`.")
            self._set_status(session, "failed")
        if session.status != "cancelled":  # the steps that wait show what they would change
            await plan_waiting(
                session,
                run.repo,
                settings=self.settings,
                forge=self.forge,
                cluster=self.cluster,
                spec_for=self.spec_or_none,
                call_args=self.call_args,
                locks=self.namespace_locks,
            )
        run.steps.last()
        await self.boundary(run, check_cancel=False)
        return session

    async def _handle(self, run: RunState, outcome: AgentOutcome) -> None:
        """The one place typed outcomes become a status and a visible line."""
        s = run.session
        if isinstance(outcome, QuestionForRequester):
            if s.todo is None:
                s.todo = Todo(title=title_for(s))
            if outcome.question not in s.todo.open_questions:
                s.todo.open_questions.append(outcome.question)
            self._set_status(s, "waiting")
        elif isinstance(outcome, ReplyToRequester):
            try:
                await self.publisher.reply(s, run.repo, outcome.text)
                self._set_status(s, "waiting")
            except ForgeError as exc:
                log.warning("reply on %s failed: %s", s.id, exc)
                self._set_status(s, "failed")
        elif isinstance(outcome, LoopGuardTripped):
            self.note(s, f"⚠️ {outcome.reason}")
            self._set_status(s, "failed")
        elif isinstance(outcome, Cancelled):
            self.note(s, outcome.message)
            self._set_status(s, "cancelled")
        else:
            self.note(s, outcome.message)
            self._set_status(s, final_status(s.todo))

    # -- steps, for both strategies -------------------------------------------------------

    async def run_ready(self, run: RunState) -> None:
        """Run the todo's ready tasks in waves, independent ones concurrently, until none is
        ready; a checkpoint after each wave. The rules path, and the model path's finish."""
        s = run.session
        assert s.todo is not None
        waves = 0
        while True:
            self.gate_approvals(s)
            block_dependents(s.todo)
            ready = ready_tasks(s.todo)
            if waves:  # the last wave's todo edit is the run's final one, with the plan
                await self.boundary(run, sync_todo=bool(ready))
            if not ready:
                return
            run.guard.step()
            for task in ready:
                run.guard.check(ToolCall(id=task.id, name=task.tool or "", arguments=task.args))
            await asyncio.gather(*(self.run_task(run, t) for t in ready))
            waves += 1

    async def run_task(self, run: RunState, task: Task) -> None:
        """Carry out one task with its planned arguments; a gated one waits for approval."""
        if task.tool is None:
            task.status = "skipped"
            return
        self.set_task(task, "running", None)
        try:
            result = await self.execute(run, task.tool, task.args, task.id)
        except NamespaceLocked as locked:
            # Approved, but another session holds the namespace: the task waits for the
            # lock (this run does not retry it), and the todo says who holds it.
            self.set_task(task, "waiting_approval", locked.DETAIL)
            self.note(run.session, neutralize_mentions(locked.message))
            return
        except NeedsApproval:
            self.set_task(task, "waiting_approval", APPROVAL_WAIT)
            return
        self.apply_result(run.session, result, task)

    def needs_approval(self, spec: ToolSpec) -> bool:
        return spec.requires_approval or spec.name in self.approval_tools

    def gate_approvals(self, s: Session) -> None:
        """Each gated task shows what `/idp apply` would approve (its digest); it waits
        until an approval names that digest, and waits again when the digest changes."""
        if s.todo is None:
            return
        changed = refresh(s, lambda task: self.task_scope(s, task))
        approved = lambda t: self.is_approved(s, t) and t.id not in self._lock_waits  # noqa: E731
        for task in gate_approvals(s.todo, self.is_gated, approved):
            changed.append(task)
        for task in changed:
            self.emit("task", {"id": task.id, "status": task.status, "detail": task.detail})

    def task_scope(self, s: Session, task: Task) -> CallScope | None:
        spec = self.spec_or_none(task.tool)
        if spec is None or not self.needs_approval(spec):
            return None
        repo = RepoRef.parse(s.repo, s.installation_id)
        args = self.call_args(spec, task.args)
        return scope_of(spec, args, s.files, repo, self.settings, task.plan)

    def is_approved(self, s: Session, task: Task) -> bool:
        spec = self.spec_or_none(task.tool)
        return spec is not None and s.approval_for(spec.name, task.digest) is not None

    def is_gated(self, tool: str | None) -> bool:
        spec = self.spec_or_none(tool)
        return spec is not None and self.needs_approval(spec)

    async def execute(
        self, run: RunState, name: str, args: dict[str, Any], task_id: str | None = None
    ) -> ToolResult:
        """One tool call with the loop's rules: allow-list, approval gate (raises
        `NeedsApproval`), side effects reused from the session, a `StepRecord` kept."""
        s = run.session
        try:
            spec = self.registry.get(name)
        except ToolError as exc:
            return ToolResult(False, error=str(exc), tool=name)
        if self.allowed is not None and spec.name not in self.allowed:
            error = f"`{spec.name}` is not enabled for this repository (.github/idp-copilot.yml)."
            return ToolResult(False, error=error, tool=spec.name)
        args = self.call_args(spec, args)
        workspace = dict(s.files)
        approved = self.needs_approval(spec)
        if approved and spec.side_effect == "external":
            try:
                hold_namespace(self.namespace_locks, run, spec, args, s.files, task_id,
                               self.settings, shown_plan(s, task_id))  # fmt: skip
            except NamespaceLocked:
                if task_id is not None:  # this run does not try it again
                    self._lock_waits.add(task_id)
                raise
        if approved:
            plan = planner(spec, args, settings=self.settings, session=s, forge=self.forge,
                           repo=run.repo, cluster=self.cluster)  # fmt: skip
            workspace = await approved_workspace(
                self.forge, run.repo, s, spec, args, task_id, self.emit, self.settings,
                shown=shown_plan(s, task_id), planner=plan,
            )  # fmt: skip
        files = s.files if spec.side_effect == "repo" else None
        if approved and spec.side_effect == "external":
            files = workspace  # a deploy of other (re-approved) files is a new side effect
        key = idempotency_key(s.id, spec.name, args, files)
        if spec.side_effect != "none" and (prior := s.step_for(key)) is not None:
            self.emit(
                "tool_result", {"tool": spec.name, "task": task_id, "ok": True, "reused": True}
            )
            return ToolResult(True, output=dict(prior.output), tool=spec.name)
        ctx = ToolContext(
            settings=self.settings,
            session=s,
            forge=self.forge,
            repo=run.repo,
            cluster=self.cluster,
            approved=approved,
            files=workspace,
            idempotency_key=key,
        )
        self.emit("tool_call", {"tool": spec.name, "task": task_id, "args": args})
        started = time.time()
        result = await self.registry.call(spec.name, args, ctx)
        output = result.output or {}
        if spec.side_effect == "none" and isinstance(output.get("files"), dict):
            output = {**output, "files": sorted(output["files"])}  # contents live in files
        s.steps.append(
            StepRecord(
                task_id=task_id,
                tool=spec.name,
                args=args,
                idempotency_key=key,
                ok=result.ok,
                output=output,
                error=result.error,
                started_at=started,
                finished_at=time.time(),
            )
        )
        done = {"ok": result.ok, "error": result.error, "duration": result.duration}
        self.emit("tool_result", {"tool": spec.name, "task": task_id, **done})
        return result

    def apply_result(self, s: Session, result: ToolResult, task: Task | None) -> None:
        """Files into the workspace, PR fields onto the session, the task ticked or failed."""
        output = result.output or {}
        if result.ok:
            merge_output(s, output)
        if task is None:
            return
        if result.ok:
            summary = output.get("summary")
            detail = summary.splitlines()[0][:160] if isinstance(summary, str) and summary else None
            self.set_task(task, "done", neutralize_mentions(detail) if detail else None)
        else:
            error = " ".join((result.error or "failed").split())
            self.set_task(task, "failed", neutralize_mentions(error[:300]))

    async def boundary(
        self, run: RunState, check_cancel: bool = True, sync_todo: bool = True
    ) -> None:
        """End of a step: keep the lock, checkpoint, then edit the todo comment if it changed
        (`sync_todo` False: the run's final boundary follows at once and edits it then)."""
        s = run.session
        if check_cancel and self.cancel_flag.is_set(s.id):  # one EXISTS, not a reload
            raise Cancelled()
        if run.lock is not None:
            run.lock.reacquire()
        self.store.save(s)
        if sync_todo and await self.publisher.sync_todo(s, run.repo):
            self.store.save(s)
            self.emit("todo", {"markdown": s.rendered_todo, "comment_id": s.comment_id})
        self.emit("step", {"status": s.status, "steps": len(s.steps)})
        run.steps.next(s)

    # -- small helpers ------------------------------------------------------------------------

    def call_args(self, spec: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments a call runs with: the config's fixed ones win, and a secret (pasted
        into an issue form, echoed by a model) never reaches files, a PR or a cluster."""
        return scrub(self.fixed_args(spec, args), self.settings.secret_values())

    def fixed_args(self, spec: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
        """`args` with the config's fixed arguments for `spec`, those its input declares."""
        fixed = self.tool_args.get(spec.name)
        if not fixed:
            return args
        declared = spec.input_model.model_fields
        return {**args, **{k: v for k, v in fixed.items() if k in declared}}

    def spec_or_none(self, name: str | None) -> ToolSpec | None:
        return self.registry.get(name) if name and name in self.registry else None

    def set_task(self, task: Task, status: str, detail: str | None) -> None:
        task.status, task.detail = status, detail  # type: ignore[assignment]
        self.emit("task", {"id": task.id, "status": status, "detail": detail})

    def _set_status(self, s: Session, status: str) -> None:
        if s.status != status:
            s.status = status  # type: ignore[assignment]
            self.emit("status", {"status": status})

    def note(self, s: Session, note: str) -> None:
        if s.todo is None:
            s.todo = Todo(title=title_for(s))
        if note not in s.todo.notes:
            s.todo.notes.append(note)
            self.emit("note", {"note": note})

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Tell the event sink (the operator API's stream); a failing sink never stops a run."""
        if self.on_event is None:
            return
        try:
            result = self.on_event(kind, data)
            if inspect.isawaitable(result):
                # keep a reference: the event loop holds tasks only weakly
                task = asyncio.ensure_future(result)
                self._event_tasks.add(task)
                task.add_done_callback(self._event_tasks.discard)
        except Exception:
            log.warning("event sink failed on %s", kind, exc_info=True)
