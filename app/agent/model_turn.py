"""One model turn, the only way the agent, the review agent and `/idp ask` talk to a model,
and the one conversation loop (`converse`) the session's model strategy and the review agent
both drive.

What we send is redacted (a secret pasted in an issue or echoed by a tool never reaches the
provider), and what the model writes is untrusted output: a secret it echoes is removed from
its text and from every tool call's arguments before anything stores, shows or runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.agent.guard import LoopGuard
from app.agent.providers.base import ChatModel, Message, ModelTurn, ToolCall
from app.redaction import Redactor
from tools.spec import ToolSpec


def outgoing(messages: Sequence[Message], redactor: Redactor) -> list[Message]:
    """`messages` as sent: every content redacted."""
    return [m.model_copy(update={"content": redactor.redact(m.content)}) for m in messages]


def without_secrets(turn: ModelTurn, redactor: Redactor) -> ModelTurn:
    """`turn` with secrets redacted in its text and in every tool call's arguments."""
    calls = [
        call.model_copy(
            update={
                "arguments": redactor.scrub(call.arguments),
                "raw_arguments": redactor.scrub(call.raw_arguments),
            }
        )
        for call in turn.tool_calls
    ]
    return turn.model_copy(update={"text": redactor.scrub(turn.text), "tool_calls": calls})


async def model_turn(
    model: ChatModel,
    system: str,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    redactor: Redactor,
) -> ModelTurn:
    """Ask `model` once, with secrets kept out both ways."""
    turn = await model.complete(system, outgoing(messages, redactor), list(tools))
    return without_secrets(turn, redactor)


class Turns(Protocol):
    """What a use of `converse` supplies: how calls are answered and what an answer ends."""

    async def before_step(self) -> None:
        """At the top of every step (approval gates, lock renewal)."""

    async def answer(self, calls: list[ToolCall]) -> None:
        """Answer `calls`, appending one tool message each to the conversation."""

    def count(self, turn: ModelTurn) -> None:
        """Account for a turn's usage (before the guard sees it: a tripped guard still counts
        the tokens spent)."""

    def keep(self) -> None:
        """The conversation changed: persist it where it lives."""

    async def finish(self, last: Message, fresh: bool) -> None:
        """The model answered without a tool call (`fresh`: in this run, not before a crash)."""


def unanswered(messages: Sequence[Message]) -> list[ToolCall]:
    """Calls of the last assistant message that have no tool result yet."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "assistant":
            answered = {m.tool_call_id for m in messages[index + 1 :] if m.role == "tool"}
            return [c for c in message.tool_calls if c.id not in answered]
    return []


async def converse(
    model: ChatModel,
    system: str,
    messages: list[Message],
    tools: Sequence[ToolSpec],
    redactor: Redactor,
    guard: LoopGuard,
    turns: Turns,
) -> None:
    """Talk with `model` until it answers without a tool call: calls left unanswered (a run
    resumed after a crash) first, then one turn at a time, each through `model_turn` and the
    loop guard. Raises the guard's and the provider's errors, and whatever `turns` raises."""
    while True:
        await turns.before_step()
        pending = unanswered(messages)
        if pending:
            await turns.answer(pending)
            continue
        if messages and messages[-1].role == "assistant":
            await turns.finish(messages[-1], fresh=False)
            return
        guard.step()
        turn = await model_turn(model, system, messages, tools, redactor)
        turns.count(turn)
        guard.record(turn.usage.input_tokens, turn.usage.output_tokens)
        messages.append(Message(role="assistant", content=turn.text, tool_calls=turn.tool_calls))
        turns.keep()
        if not turn.tool_calls:
            await turns.finish(messages[-1], fresh=True)
            return
