"""`ScriptedChatModel`: a `ChatModel` that answers with a fixed list of turns.

For tests and demos of the model path without a network: it returns the turns in order and
keeps every request it received, so a test can check what the model was shown (quoting of
untrusted text, no secrets, the tools offered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.agent.providers.base import Message, ModelTurn, ProviderError
from tools.spec import ToolSpec


@dataclass
class ScriptedRequest:
    """One `complete()` call as the model saw it."""

    system: str
    messages: list[Message]
    tools: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Everything sent, as one string: system prompt, contents and tool-call arguments."""
        parts = [self.system]
        for m in self.messages:
            parts.append(m.content or "")
            parts.extend(f"{c.name} {c.arguments} {c.raw_arguments}" for c in m.tool_calls)
        return "\n".join(parts)


class ScriptedChatModel:
    """Returns `turns` in order; after the last one, repeats it when `repeat_last`, else
    raises `ProviderError` (a script that ran out is a test bug worth seeing)."""

    name = "scripted"

    def __init__(
        self, turns: Sequence[ModelTurn], model: str = "scripted-1", repeat_last: bool = False
    ) -> None:
        self.turns = list(turns)
        self.model = model
        self.repeat_last = repeat_last
        self.requests: list[ScriptedRequest] = []

    async def complete(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelTurn:
        self.requests.append(
            ScriptedRequest(
                system=system,
                messages=[m.model_copy(deep=True) for m in messages],
                tools=[t.name for t in tools],
            )
        )
        index = len(self.requests) - 1
        if index < len(self.turns):
            return self.turns[index].model_copy(deep=True)
        if self.repeat_last and self.turns:
            return self.turns[-1].model_copy(deep=True)
        raise ProviderError(
            f"the scripted model has no turn {index + 1} (it has {len(self.turns)})"
        )
