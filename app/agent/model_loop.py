"""The model strategy: a language model plans (`write_todo`) → decides → acts → observes.

The conversation is kept on the session, so a re-run after a crash continues it: calls the
model made but that were never answered are carried out first (side effects reused from
their records), then the model is asked again. Everything we put in a message is redacted;
request text travels only in user messages, quoted (app/agent/planner.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from pydantic import ValidationError

from app.agent import backstop
from app.agent.model_turn import converse
from app.agent.ordering import plan_problems, waves
from app.agent.outcomes import (
    LoopGuardTripped,
    NamespaceLocked,
    NeedsApproval,
    QuestionForRequester,
)
from app.agent.planner import (
    ASK_REQUESTER,
    WRITE_TODO,
    AskRequester,
    WriteTodo,
    merge_plan,
    public_text,
    request_message,
    system_prompt,
    title_for,
)
from app.agent.progress import APPROVAL_WAIT, FINISHED
from app.agent.providers.base import ChatModel, Message, ModelTurn, ToolCall
from app.domain.todo import Task, Todo
from app.redaction import redact, redactor_for
from tools.registry import ToolResult, normalize_name, validation_message

if TYPE_CHECKING:
    from app.agent.engine import RunState, Steps
    from app.state import Session

OBSERVATION_LIMIT = 8000
_PSEUDO = (WRITE_TODO.name, ASK_REQUESTER.name)


class ModelStrategy:
    """A language model plans (`write_todo`) and picks the calls; the App finishes what it
    leaves (backstop.py)."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model

    async def drive(self, agent: Steps, run: RunState) -> None:
        await run_with_model(agent, self.model, run)


async def run_with_model(agent: Steps, model: ChatModel, run: RunState) -> None:
    """Drive the model until it answers without a tool call, asks a question, or a limit
    trips. Raises the loop's typed outcomes; `Agent.run` handles them."""
    s = run.session
    secrets = agent.settings.secret_values()
    redactor = redactor_for(secrets)
    if s.todo is None:  # a new request or `/idp plan`: a new plan, a new conversation
        s.todo = Todo(title=title_for(s), meta={"planner": f"{model.name} ({model.model})"})
        s.messages = []
    messages = [Message.model_validate(m) for m in s.messages]
    if not messages:
        messages.append(Message(role="user", content=redactor.redact(request_message(s))))
    _continue_after_approval(s, messages)
    tools = [
        spec
        for spec in agent.registry.specs()
        if agent.allowed is None or spec.name in agent.allowed
    ] + [WRITE_TODO, ASK_REQUESTER]
    system = system_prompt(s, tools, [t.name for t in tools if agent.needs_approval(t)])
    turns = _SessionTurns(agent, run, messages, secrets)
    await converse(model, system, messages, tools, redactor, run.guard, turns)


class _SessionTurns:
    """The session's side of the conversation: approval gates, calls answered in waves with
    a checkpoint after each, the conversation kept on the session, the App's backstop last."""

    def __init__(
        self, agent: Steps, run: RunState, messages: list[Message], secrets: list[str]
    ) -> None:
        self.agent, self.run, self.messages, self.secrets = agent, run, messages, secrets

    async def before_step(self) -> None:
        self.agent.gate_approvals(self.run.session)

    async def answer(self, calls: list[ToolCall]) -> None:
        question = await _answer(self.agent, self.run, self.messages, calls, self.secrets)
        await self.agent.boundary(self.run)
        if question:
            raise QuestionForRequester(question)

    def count(self, turn: ModelTurn) -> None:
        _record_usage(self.agent, self.run.session, turn)

    def keep(self) -> None:
        self.run.session.messages = [m.model_dump(mode="json") for m in self.messages]

    async def finish(self, last: Message, fresh: bool) -> None:
        if fresh:
            if last.content and last.content.strip():
                self.agent.note(self.run.session, f"Agent: {public_text(last.content, 500)}")
            await self.agent.boundary(self.run)
        await backstop.finish(self.agent, self.run)


def _continue_after_approval(s: Session, messages: list[Message]) -> None:
    """After `/idp apply` on a finished conversation, tell the model it may go on."""
    waiting = s.todo is not None and any(t.status == "waiting_approval" for t in s.todo.tasks)
    last = messages[-1]
    if s.approved_by and waiting and last.role == "assistant" and not last.tool_calls:
        messages.append(
            Message(
                role="user",
                content=(
                    f"A maintainer (@{s.approved_by}) approved with `/idp apply`. Carry out the "
                    "tasks that were waiting for approval."
                ),
            )
        )


async def _answer(
    agent: Steps,
    run: RunState,
    messages: list[Message],
    calls: list[ToolCall],
    secrets: list[str],
) -> str | None:
    """Answer every call of one turn; independent tool calls run concurrently. Returns the
    requester question when the model asked one."""
    s = run.session
    results: dict[str, Message] = {}
    question: str | None = None
    runnable: list[ToolCall] = []
    try:
        for call in calls:
            run.guard.check(call)
    except LoopGuardTripped:
        for call in calls:
            results[call.id] = _reply(call, "Not run: the loop guard stopped this run.", True)
        _extend(s, messages, calls, results)
        raise
    assert s.todo is not None
    names = {normalize_name(c.name) for c in calls if c.arguments is not None}
    if not s.todo.tasks and WRITE_TODO.name not in names and names - set(_PSEUDO):
        backstop.adopt_plan(agent, s)  # the model works without a plan: the App writes one
    for call in calls:
        kind = normalize_name(call.name)
        if call.arguments is None:
            raw = redact((call.raw_arguments or "")[:200], secrets)
            results[call.id] = _reply(
                call,
                f"Error: the arguments of `{call.name}` are not a JSON object ({raw!r}). "
                "Call it again with a JSON object that matches its schema.",
                True,
            )
        elif kind == WRITE_TODO.name:
            results[call.id] = _write_todo(agent, s, call)
        elif kind == ASK_REQUESTER.name:
            try:
                asked = AskRequester.model_validate(call.arguments)
            except ValidationError as exc:
                text = validation_message(exc, "Invalid arguments for `ask_requester`")
                results[call.id] = _reply(call, text, True)
                continue
            question = public_text(asked.question, 300)
            results[call.id] = _reply(
                call, "Question posted; the run pauses until the requester answers.", False
            )
        else:
            runnable.append(call)
    results.update(await _run_calls(agent, run, runnable, secrets))
    _extend(s, messages, calls, results)
    return question


def _extend(s: Session, messages: list[Message], calls: list[ToolCall], results: dict) -> None:
    messages.extend(results[c.id] for c in calls)
    s.messages = [m.model_dump(mode="json") for m in messages]


def _write_todo(agent: Steps, s: Session, call: ToolCall) -> Message:
    try:
        plan = WriteTodo.model_validate(call.arguments)
    except ValidationError as exc:
        return _reply(call, validation_message(exc, "Invalid plan for `write_todo`"), True)
    problems = plan_problems(
        [(t.id or f"t{n}", t.depends_on) for n, t in enumerate(plan.tasks, start=1)]
    )
    if problems:
        return _reply(
            call,
            "Plan not saved: " + "; ".join(problems) + ". Fix the ids and `depends_on`, then "
            "call `write_todo` again.",
            True,
        )
    s.todo.meta.pop(backstop.PLAN_META, None)  # the model's plan from now on
    warnings = merge_plan(s.todo, plan, agent.registry)
    agent.gate_approvals(s)
    agent.emit("todo", {"todo": s.todo.model_dump()})
    text = f"Plan saved: {len(s.todo.tasks)} tasks."
    if warnings:
        text += " Warnings: " + "; ".join(warnings) + "."
    return _reply(call, text, bool(warnings))


async def _run_calls(
    agent: Steps, run: RunState, calls: list[ToolCall], secrets: list[str]
) -> dict[str, Message]:
    """Run one turn's tool calls: each against the task it carries out, in waves that honour
    the tasks' `depends_on` (a wave's calls run concurrently). A call whose task waits for a
    task that has not run is refused with a sentence the model can act on."""
    s = run.session
    todo = s.todo
    assert todo is not None
    tasks: dict[str, Task | None] = {}
    taken: set[str] = set()
    for call in calls:
        spec = agent.spec_or_none(call.name)
        task = backstop.task_for(todo, spec, call.arguments or {}, taken)
        if task is not None:
            taken.add(task.id)
        tasks[call.id] = task
    by_task = {task.id: call_id for call_id, task in tasks.items() if task is not None}
    results: dict[str, Message] = {}
    deps: dict[str, list[str]] = {}
    for call in calls:
        task = tasks[call.id]
        if task is None:
            continue
        deps[call.id] = [by_task[d] for d in task.depends_on if d in by_task]
        waiting = _unmet(agent, s, task, by_task)
        if waiting:
            results[call.id] = _reply(call, _refusal(task, waiting), True)
    order, cyclic = waves([c.id for c in calls if c.id not in results], deps)
    for call_id in cyclic:  # plans are checked for cycles; this only guards the loop
        results[call_id] = _reply(_by_id(calls, call_id), "Not run: depends_on has a cycle.", True)
    for wave in order:
        ready = []
        for call_id in wave:
            failed = [d for d in deps.get(call_id, ()) if results[d].is_error]
            call = _by_id(calls, call_id)
            if failed:
                names = ", ".join(f"`{_by_id(calls, d).name}`" for d in failed)
                text = f"Not run: it depends on {names} of this turn, which did not succeed."
                results[call_id] = _reply(call, text, True)
            else:
                ready.append(call)
        replies = await asyncio.gather(
            *(_run_call(agent, run, c, tasks[c.id], secrets) for c in ready)
        )
        results.update({c.id: r for c, r in zip(ready, replies, strict=True)})
    return results


def _by_id(calls: list[ToolCall], call_id: str) -> ToolCall:
    return next(c for c in calls if c.id == call_id)


def _unmet(agent: Steps, s: Session, task: Task, this_turn: dict[str, str]) -> list[Task]:
    """Tasks of the model's own plan that `task` waits for, that are neither finished nor
    run in this turn. The App's plans only order calls: the model never saw them."""
    todo = s.todo
    if todo is None or backstop.app_planned(todo):
        return []
    if agent.is_gated(task.tool) and not s.approved_by:
        return []  # refused for want of approval instead, which says more
    known = {t.id: t for t in todo.tasks}
    return [
        known[d]
        for d in task.depends_on
        if d in known and d not in this_turn and known[d].tool and known[d].status not in FINISHED
    ]


def _refusal(task: Task, waiting: list[Task]) -> str:
    state = {"failed": "failed", "blocked": "is blocked", "waiting_approval": "waits for approval"}
    parts = [
        f"`{w.id}` (`{w.tool}`), which {state.get(w.status, 'has not run yet')}" for w in waiting
    ]
    return (
        f"Not run: task `{task.id}` depends on {'; '.join(parts)}. Call those first (or in the "
        "same reply), or change `depends_on` with `write_todo`."
    )


async def _run_call(
    agent: Steps, run: RunState, call: ToolCall, task: Task | None, secrets: list[str]
) -> Message:
    s = run.session
    if task is not None:
        agent.set_task(task, "running", None)
    try:
        result = await agent.execute(run, call.name, call.arguments or {}, task and task.id)
    except NamespaceLocked as locked:
        agent.note(s, locked.message)
        if task is not None:
            agent.set_task(task, "waiting_approval", locked.DETAIL)
        return _reply(
            call,
            f"Not run yet: {locked.message} Do not call it again in this run.",
            True,
        )
    except NeedsApproval as refused:
        agent.note(
            s,
            f"🚫 Refused `{refused.tool}`: the agent asked to run it without approval; it is "
            f"{APPROVAL_WAIT}.",
        )
        if task is not None:
            agent.set_task(task, "waiting_approval", APPROVAL_WAIT)
        return _reply(
            call,
            f"Refused: `{refused.tool}` needs a maintainer's approval (`/idp apply`) and this "
            "session has none. Do not call it again; leave it in the plan as waiting.",
            True,
        )
    agent.apply_result(s, result, task)
    return _reply(call, redact(_observation(result), secrets), not result.ok)


def _observation(result: ToolResult) -> str:
    if not result.ok:
        return f"Error: {result.error}"
    output = dict(result.output or {})
    if isinstance(output.get("files"), dict):
        output["files"] = sorted(output["files"])  # paths only; contents are kept for the PR
    text = json.dumps(output, ensure_ascii=False, default=str)
    if len(text) > OBSERVATION_LIMIT:
        text = text[:OBSERVATION_LIMIT] + " … (shortened)"
    return text


def _reply(call: ToolCall, content: str, is_error: bool) -> Message:
    return Message(
        role="tool", content=content, tool_call_id=call.id, name=call.name, is_error=is_error
    )


def _record_usage(agent: Steps, s: Session, turn: ModelTurn) -> None:
    usage = s.token_usage
    usage["input_tokens"] = usage.get("input_tokens", 0) + turn.usage.input_tokens
    usage["output_tokens"] = usage.get("output_tokens", 0) + turn.usage.output_tokens
    usage["model_calls"] = usage.get("model_calls", 0) + 1
    agent.emit(
        "model_turn",
        {
            "text": turn.text,
            "tool_calls": [c.name for c in turn.tool_calls],
            "input_tokens": turn.usage.input_tokens,
            "output_tokens": turn.usage.output_tokens,
        },
    )
