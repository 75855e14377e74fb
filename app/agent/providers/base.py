"""The seam between the agent loop and a language model.

A `ChatModel` takes a system prompt, a neutral message list and the tool specs, and returns
one assistant turn: text and/or tool calls, with token usage. OpenAI, Anthropic and any
OpenAI-compatible server implement it; tests use a scripted one. The `rules` planner needs
no model at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from tools.spec import ToolSpec


class ToolCall(BaseModel):
    """A tool call as the model asked for it. `arguments` is None when the model sent
    arguments that are not a JSON object; `raw_arguments` keeps what it sent."""

    id: str
    name: str
    arguments: dict[str, Any] | None = None
    raw_arguments: str | None = None


class Message(BaseModel):
    """Provider-neutral chat message. Untrusted text (issue bodies, comments) only ever
    travels in `user` messages, quoted, never in the system prompt."""

    role: Literal["user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0


class ModelTurn(BaseModel):
    text: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    stop_reason: str | None = None


class ProviderError(Exception):
    """The model could not be reached or answered badly after retries; safe to show."""


class ChatModel(Protocol):
    name: str  # "openai", "anthropic", "scripted"
    model: str

    async def complete(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelTurn: ...
