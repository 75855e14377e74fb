"""The loop with a language model: plan (`write_todo`) → decide → act → observe → re-plan.

The conversation is kept on the session, so a re-run after a crash continues it: calls the
model made but that were never answered are carried out first (side effects reused from
their records), then the model is asked again. Everything we put in a message is redacted;
request text travels only in user messages, quoted (app/agent/planner.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from app.agent.outcomes import LoopGuardTripped, NeedsApproval, QuestionForRequester
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
from app.agent.progress import APPROVAL_WAIT
from app.agent.providers.base import Message, ModelTurn, ToolCall
from app.agent.sanitize import redact
from app.agent.todo import Task, Todo
from app.audit import scrub
from tools.registry import ToolResult, normalize_name, validation_message
from tools.spec import ToolSpec

if TYPE_CHECKING:
    from app.agent.loop import Agent, RunState
    from app.state import Session

OBSERVATION_LIMIT = 8000
_OPEN = ("pending", "running", "failed", "waiting_approval", "blocked")


async def run_with_model(agent: Agent, run: RunState) -> None:
    """Drive the model until it answers without a tool call, asks a question, or a limit
    trips. Raises the loop's typed outcomes; `Agent.run` handles them."""
    s = run.session
    model = agent.chat_model
    assert model is not None
    secrets = agent.settings.secret_values()
    if s.todo is None:  # a new request or `/idp plan`: a new plan, a new conversation
        s.todo = Todo(title=title_for(s), meta={"planner": f"{model.name} ({model.model})"})
        s.messages = []
    messages = [Message.model_validate(m) for m in s.messages]
    if not messages:
        messages.append(Message(role="user", content=redact(request_message(s), secrets)))
    _continue_after_approval(s, messages)
    tools = [
        spec
        for spec in agent.registry.specs()
        if agent.allowed is None or spec.name in agent.allowed
    ] + [WRITE_TODO, ASK_REQUESTER]
    system = system_prompt(s, tools, [t.name for t in tools if agent.needs_approval(t)])
    while True:
        agent.gate_approvals(s)
        pending = _unanswered(messages)
        if pending:
            question = await _answer(agent, run, messages, pending, secrets)
            await agent.boundary(run)
            if question:
                raise QuestionForRequester(question)
            continue
        if messages[-1].role == "assistant":
            return  # the model's final answer
        run.guard.step()
        outgoing = [m.model_copy(update={"content": redact(m.content, secrets)}) for m in messages]
        # What a model writes is untrusted output: a secret it echoes (pasted in an issue,
        # or a credential-shaped string) is removed before it is stored, shown or run.
        turn = _without_secrets(await model.complete(system, outgoing, tools), secrets)
        _record_usage(agent, s, turn)
        run.guard.record(turn.usage.input_tokens, turn.usage.output_tokens)
        messages.append(Message(role="assistant", content=turn.text, tool_calls=turn.tool_calls))
        s.messages = [m.model_dump(mode="json") for m in messages]
        if not turn.tool_calls:
            if turn.text and turn.text.strip():
                agent.note(s, f"Agent: {public_text(turn.text, 500)}")
            return


def _without_secrets(turn: ModelTurn, secrets: list[str]) -> ModelTurn:
    """`turn` with secret values and token-shaped strings redacted in its text and in every
    tool call's arguments."""
    calls = [
        call.model_copy(
            update={
                "arguments": scrub(call.arguments, secrets),
                "raw_arguments": scrub(call.raw_arguments, secrets),
            }
        )
        for call in turn.tool_calls
    ]
    return turn.model_copy(update={"text": scrub(turn.text, secrets), "tool_calls": calls})


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


def _unanswered(messages: list[Message]) -> list[ToolCall]:
    """Calls of the last assistant message that have no tool result yet."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "assistant":
            answered = {m.tool_call_id for m in messages[index + 1 :] if m.role == "tool"}
            return [c for c in message.tool_calls if c.id not in answered]
    return []


async def _answer(
    agent: Agent,
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
    replies = await asyncio.gather(*(_run_call(agent, run, c, secrets) for c in runnable))
    results.update({c.id: r for c, r in zip(runnable, replies, strict=True)})
    _extend(s, messages, calls, results)
    return question


def _extend(s: Session, messages: list[Message], calls: list[ToolCall], results: dict) -> None:
    messages.extend(results[c.id] for c in calls)
    s.messages = [m.model_dump(mode="json") for m in messages]


def _write_todo(agent: Agent, s: Session, call: ToolCall) -> Message:
    try:
        plan = WriteTodo.model_validate(call.arguments)
    except ValidationError as exc:
        return _reply(call, validation_message(exc, "Invalid plan for `write_todo`"), True)
    warnings = merge_plan(s.todo, plan, agent.registry)
    agent.gate_approvals(s)
    agent.emit("todo", {"todo": s.todo.model_dump()})
    text = f"Plan saved: {len(s.todo.tasks)} tasks."
    if warnings:
        text += " Warnings: " + "; ".join(warnings) + "."
    return _reply(call, text, bool(warnings))


async def _run_call(agent: Agent, run: RunState, call: ToolCall, secrets: list[str]) -> Message:
    s = run.session
    spec = agent.spec_or_none(call.name)
    task = _task_for(s.todo, spec, call.arguments or {})
    if task is not None:
        agent.set_task(task, "running", None)
    try:
        result = await agent.execute(run, call.name, call.arguments or {}, task and task.id)
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


def _task_for(todo: Todo | None, spec: ToolSpec | None, args: dict[str, Any]) -> Task | None:
    """The planned task this call carries out: same tool, preferably the same arguments."""
    if todo is None or spec is None:
        return None
    open_tasks = [t for t in todo.tasks if t.tool == spec.name and t.status in _OPEN]
    exact = [t for t in open_tasks if t.args == args]
    return (exact or open_tasks or [None])[0]


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


def _record_usage(agent: Agent, s: Session, turn: ModelTurn) -> None:
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
