"""`OpenAIChat`: the `ChatModel` for OpenAI's Chat Completions API and any server that speaks it
(vLLM, Ollama, LiteLLM) through `OPENAI_BASE_URL`.

The agent loop calls `complete()`; this module turns the neutral message list into Chat
Completions messages, sends them with the tool list, and parses the answer back into a
`ModelTurn`. Retries on 429, 5xx, timeouts and connection errors are the SDK's own (it honours
`Retry-After`); what is left after them becomes a `ProviderError` that names the provider and
the status, never the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import openai
from openai import AsyncOpenAI

from app.agent.providers.base import Message, ModelTurn, ProviderError, ToolCall, Usage
from app.config import Settings
from app.redaction import redact as redact_text
from app.telemetry import observe_llm
from tools.spec import ToolSpec, to_openai_tool

MAX_RETRIES = 3
DEFAULT_BASE_URL = "https://api.openai.com/v1"
# vLLM and Ollama run without authentication unless told otherwise, but the SDK refuses to
# start without a key: this stands in for it and is sent as a harmless bearer value.
PLACEHOLDER_KEY = "no-key-needed"


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every given secret and anything credential-shaped masked: an API's error
    text may echo part of a key back, and that text may end up in a comment or a log."""
    return redact_text(text, [s for s in secrets if s])


def parse_arguments(raw: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """(arguments, raw_arguments) from the JSON text a model sent: the object when it is one,
    else None and the text as sent, so that the loop can tell the model what was wrong."""
    if raw is None or not raw.strip():
        # Servers differ: a call without arguments comes as "", "{}" or nothing.
        return {}, None
    try:
        value = json.loads(raw)
    except ValueError:
        return None, raw
    if not isinstance(value, dict):
        return None, raw
    return value, None


class SdkProvider:
    """What the OpenAI and Anthropic providers share: closing the client, and the sentence
    for an error their SDK raised after its retries (both SDKs name their error classes
    alike). A subclass sets the SDK module, its variables' prefix and its own hints."""

    sdk: Any
    env: str
    extra_hints: dict[int, str]
    model: str
    base_url: str
    max_retries: int
    client: Any
    _key: str
    _label: str

    async def aclose(self) -> None:
        """Close the HTTP connections (worker shutdown)."""
        await self.client.close()

    def _failure(self, exc: Exception) -> ProviderError:
        label, retries, env = self._label, self.max_retries, self.env
        if isinstance(exc, self.sdk.APIStatusError):
            hints = {
                401: f"the API key was rejected: check {env}_API_KEY",
                403: f"access denied: check that the key may use model {self.model}",
                404: f"model {self.model} was not found: check {env}_MODEL and {env}_BASE_URL",
                **self.extra_hints,
            }
            return status_error(label, exc.status_code, exc.body, hints, retries, self._key)
        # A timeout is a kind of connection error in both SDKs: ask about it first.
        if isinstance(exc, self.sdk.APITimeoutError):
            return ProviderError(
                f"{label} did not answer within the request timeout (IDP_LLM_TIMEOUT) "
                f"after {retries} retries; try again later."
            )
        if isinstance(exc, self.sdk.APIConnectionError):
            return ProviderError(
                f"{label} could not be reached at {host_of(self.base_url)} after "
                f"{retries} retries; check {env}_BASE_URL and the network."
            )
        return ProviderError(f"{label} request failed: {redact(str(exc), self._key)}")


class OpenAIChat(SdkProvider):
    """Chat Completions with tools, for the agent loop. One instance per worker is enough."""

    name = "openai"
    sdk, env = openai, "OPENAI"
    extra_hints = {429: "rate limited or out of quota"}

    def __init__(self, settings: Settings, *, max_retries: int = MAX_RETRIES) -> None:
        key = settings.openai_api_key.get_secret_value().strip() if settings.openai_api_key else ""
        self.model = settings.openai_model
        self.base_url = settings.openai_base_url or DEFAULT_BASE_URL
        self.max_retries = max_retries
        self._key = key
        self._label = (
            "OpenAI"
            if not settings.openai_base_url
            else f"The OpenAI-compatible server at {host_of(self.base_url)}"
        )
        # base_url and api_key are always passed: left out, the SDK would read OPENAI_* from
        # the environment on its own, behind the back of `Settings`.
        self.client = AsyncOpenAI(
            api_key=key or PLACEHOLDER_KEY,
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
            "messages": to_openai_messages(system, messages),
        }
        if tools:
            # `parallel_tool_calls` is left at the API's default (on): some models and
            # compatible servers reject the parameter itself.
            request["tools"] = [to_openai_tool(spec) for spec in tools]
            request["tool_choice"] = "auto"
        with observe_llm(self.name, self.model) as record:
            turn = await self._send(request)
            record(turn.usage.input_tokens, turn.usage.output_tokens)
        return turn

    async def _send(self, request: dict[str, Any]) -> ModelTurn:
        try:
            completion = await self.client.chat.completions.create(**request)
        except openai.OpenAIError as exc:
            raise self._failure(exc) from None
        return parse_completion(completion)


def to_openai_messages(system: str, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The Chat Completions `messages` list: the system prompt first, then the conversation."""
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    for message in messages:
        if message.role == "user":
            out.append({"role": "user", "content": message.content or ""})
        elif message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.content}
            if message.tool_calls:
                # The API rejects an empty `tool_calls` array, so the key is only set with calls.
                entry["tool_calls"] = [_call_entry(call) for call in message.tool_calls]
            out.append(entry)
        else:
            if not message.tool_call_id:
                raise ValueError("a tool result message needs the tool_call_id it answers")
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id,
                    "content": message.content or "",
                }
            )
    return out


def _call_entry(call: ToolCall) -> dict[str, Any]:
    if call.arguments is not None:
        arguments = json.dumps(call.arguments)
    else:
        # Echo what the model sent, malformed or not: the next tool message explains the error.
        arguments = call.raw_arguments or "{}"
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def parse_completion(completion: Any) -> ModelTurn:
    """A `ModelTurn` from a `ChatCompletion`: text, every tool call, usage, finish reason."""
    if not completion.choices:
        raise ProviderError("OpenAI answered without any choice; try again.")
    choice = completion.choices[0]
    message = choice.message
    calls: list[ToolCall] = []
    for call in message.tool_calls or []:
        function = getattr(call, "function", None)
        if function is None:
            # Custom (free-form) tool calls carry no JSON arguments; we never declare such tools.
            continue
        arguments, raw = parse_arguments(function.arguments)
        calls.append(
            ToolCall(id=call.id, name=function.name, arguments=arguments, raw_arguments=raw)
        )
    usage = completion.usage
    return ModelTurn(
        text=message.content or None,
        tool_calls=calls,
        usage=Usage(
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        ),
        stop_reason=choice.finish_reason,
    )


def status_error(
    label: str,
    status: int,
    body: object,
    hints: dict[int, str],
    max_retries: int,
    key: str | None,
) -> ProviderError:
    """The sentence for an HTTP error the SDK gave up on: the status, what it usually means,
    and the API's own words (redacted) except on 401/403, where they may echo the key."""
    hint = hints.get(status, "a server error" if status >= 500 else "the request was rejected")
    retried = status == 429 or status >= 500
    after = f" after {max_retries} retries; try again later" if retried else ""
    said = ""
    if status not in (401, 403):
        detail = error_message(body)
        if detail:
            said = f" The API said: {redact(detail, key)[:300]}"
    return ProviderError(f"{label} answered HTTP {status} ({hint}){after}.{said}")


def error_message(body: object) -> str | None:
    """The `error.message` of an error body (OpenAI and Anthropic shape them alike)."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    return None


def host_of(url: str) -> str:
    """Host and port of a URL, without any credentials or path."""
    match = re.match(r"^[a-z]+://(?:[^@/]*@)?([^/]+)", url)
    return match.group(1) if match else url
