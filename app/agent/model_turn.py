"""One model turn, the only way the agent, the review agent and `/idp ask` talk to a model.

What we send is redacted (a secret pasted in an issue or echoed by a tool never reaches the
provider), and what the model writes is untrusted output: a secret it echoes is removed from
its text and from every tool call's arguments before anything stores, shows or runs it.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.agent.providers.base import ChatModel, Message, ModelTurn
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
