"""`AnthropicChat`: the `ChatModel` for Anthropic's Messages API with tools.

The Messages API differs from Chat Completions in three ways that matter here: the system
prompt is a top-level field, tool calls and results are content blocks, and roles must
alternate, so the results of parallel tool calls travel together in one user message.
Retries on 429, 5xx (529 "overloaded" included), timeouts and connection errors are the
SDK's own and honour `Retry-After`; what is left becomes a `ProviderError` without the key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anthropic
from anthropic import AsyncAnthropic

from app.agent.providers.base import Message, ModelTurn, ToolCall, Usage
from app.agent.providers.openai_chat import MAX_RETRIES, SdkProvider, host_of
from app.config import Settings
from app.telemetry import observe_llm
from tools.spec import ToolSpec, to_anthropic_tool

DEFAULT_BASE_URL = "https://api.anthropic.com"
# Enough for a plan or a handful of tool calls with their arguments; the API requires a value.
MAX_TOKENS = 4096


class AnthropicChat(SdkProvider):
    """Messages API with tools, for the agent loop. One instance per worker is enough."""

    name = "anthropic"
    sdk, env = anthropic, "ANTHROPIC"
    extra_hints = {429: "rate limited", 529: "the API is overloaded"}

    def __init__(
        self,
        settings: Settings,
        *,
        max_retries: int = MAX_RETRIES,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        key = (
            settings.anthropic_api_key.get_secret_value().strip()
            if settings.anthropic_api_key
            else ""
        )
        self.model = settings.anthropic_model
        self.base_url = settings.anthropic_base_url or DEFAULT_BASE_URL
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self._key = key
        self._label = (
            "Anthropic"
            if not settings.anthropic_base_url
            else f"The Anthropic-compatible gateway at {host_of(self.base_url)}"
        )
        # base_url is always passed: left out, the SDK would read ANTHROPIC_BASE_URL from the
        # environment on its own, behind the back of `Settings`.
        self.client = AsyncAnthropic(
            api_key=key,
            base_url=self.base_url,
            timeout=settings.llm_timeout,
            max_retries=max_retries,
        )

    async def complete(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelTurn:
        """One assistant turn for the conversation so far."""
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": to_anthropic_messages(messages),
        }
        if system:
            request["system"] = system
        if tools:
            # Parallel tool use is the API's default with tool_choice "auto".
            request["tools"] = [to_anthropic_tool(spec) for spec in tools]
        with observe_llm(self.name, self.model) as record:
            turn = await self._send(request)
            record(turn.usage.input_tokens, turn.usage.output_tokens)
        return turn

    async def _send(self, request: dict[str, Any]) -> ModelTurn:
        try:
            message = await self.client.messages.create(**request)
        except anthropic.AnthropicError as exc:
            raise self._failure(exc) from None
        return parse_message(message)


def to_anthropic_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The Messages API `messages` list: content blocks, roles alternating.

    Tool results become `tool_result` blocks in a user message; consecutive messages of the
    same role (the results of parallel calls, or a note after them) merge into one message.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        role, blocks = _blocks(message)
        if not blocks:
            # The API rejects empty content; an empty turn carries nothing worth sending.
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def _blocks(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        if not message.tool_call_id:
            raise ValueError("a tool result message needs the tool_call_id it answers")
        block = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": message.content or "",
            "is_error": message.is_error,
        }
        return "user", [block]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    if message.role == "assistant":
        for call in message.tool_calls:
            # `input` must be an object: a call whose arguments were malformed goes back as
            # {} and its tool_result says what was wrong.
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": call.arguments if call.arguments is not None else {},
                }
            )
    return message.role, blocks


def parse_message(message: Any) -> ModelTurn:
    """A `ModelTurn` from a Messages API `Message`: text, tool_use blocks, usage, stop reason."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append(_tool_call(block))
        # Other blocks (thinking, server tool results) are not part of the neutral turn.
    usage = message.usage
    return ModelTurn(
        text="\n".join(t for t in texts if t) or None,
        tool_calls=calls,
        usage=Usage(
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
        ),
        stop_reason=message.stop_reason,
    )


def _tool_call(block: Any) -> ToolCall:
    value = block.input
    if isinstance(value, dict):
        return ToolCall(id=block.id, name=block.name, arguments=value)
    raw = value if isinstance(value, str) else json.dumps(value)
    return ToolCall(id=block.id, name=block.name, arguments=None, raw_arguments=raw)
