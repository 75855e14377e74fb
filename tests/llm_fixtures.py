"""Recorded OpenAI and Anthropic conversations, served through respx, for tests of the providers
and of the agent loop.

A file in tests/fixtures/llm/ holds `provider`, `about`, `repeat_last` and an ordered list of
`exchanges`: `{request_body_must_contain, status, headers, response}`. Each request the SDK
sends is checked against the next exchange and answered with its recorded response, in order.

`request_body_must_contain` is a partial body: objects match when every key given matches;
lists match when their items appear in the request's list in the same order (others may sit
between them); the string "*" matches any present value; anything else must be equal.

Usage in a test (`no_unmocked_http` is the suite's autouse respx router):

    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, "openai_create_service")
    turn = await OpenAIChat(settings).complete(system, messages, tools)
    conversation.requests   # the JSON bodies the provider sent
    conversation.retry_waits  # the SDK's computed backoff waits (not slept)
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import respx

from app.agent.providers import anthropic_chat, openai_chat

FIXTURES_DIR = Path(__file__).parent / "fixtures" / "llm"
ENDPOINTS = {
    "openai": openai_chat.DEFAULT_BASE_URL + "/chat/completions",
    "anthropic": anthropic_chat.DEFAULT_BASE_URL + "/v1/messages",
}


def load_conversation(name: str) -> dict[str, Any]:
    """The recorded conversation `tests/fixtures/llm/NAME.json`."""
    return json.loads((FIXTURES_DIR / f"{name}.json").read_text())


def mismatches(actual: Any, expected: Any, path: str = "body") -> list[str]:
    """Where `actual` fails the partial `expected` (rules in the module docstring)."""
    if expected == "*":
        return [] if actual is not None else [f"{path} is missing"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path} is {json.dumps(actual)[:80]}, expected an object"]
        found: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{path}.{key} is missing")
            else:
                found += mismatches(actual[key], value, f"{path}.{key}")
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path} is {json.dumps(actual)[:80]}, expected a list"]
        position = 0
        for item in expected:
            while position < len(actual) and mismatches(actual[position], item):
                position += 1
            if position == len(actual):
                return [f"{path} has no item matching {json.dumps(item)} (in this order)"]
            position += 1
        return []
    return [] if actual == expected else [f"{path} is {actual!r}, expected {expected!r}"]


class RecordedConversation:
    """A respx side effect that serves one recorded conversation, checking every request."""

    def __init__(self, name: str) -> None:
        data = load_conversation(name)
        self.name = name
        self.provider: str = data["provider"]
        self.exchanges: list[dict[str, Any]] = data["exchanges"]
        self.repeat_last: bool = data.get("repeat_last", False)
        self.requests: list[dict[str, Any]] = []
        self.retry_waits: list[float] = []

    @property
    def served(self) -> int:
        return len(self.requests)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        index = len(self.requests)
        if index >= len(self.exchanges) and not self.repeat_last:
            raise AssertionError(
                f"{self.name}: request {index + 1} but only {len(self.exchanges)} are recorded"
            )
        body = json.loads(request.content)
        self.requests.append(body)
        repeat = max(0, index - len(self.exchanges) + 1)
        exchange = self.exchanges[min(index, len(self.exchanges) - 1)]
        problems = mismatches(body, exchange.get("request_body_must_contain", {}))
        if problems:
            raise AssertionError(f"{self.name}, request {index + 1}: " + "; ".join(problems[:5]))
        response = exchange["response"]
        if repeat:
            response = _fresh_ids(response, repeat)
        return httpx.Response(
            exchange.get("status", 200),
            headers=exchange.get("headers", {"content-type": "application/json"}),
            content=json.dumps(response).encode(),
        )

    def assert_all_served(self) -> None:
        """Fail unless every recorded exchange was asked for."""
        assert self.served >= len(self.exchanges), (
            f"{self.name}: {self.served} of {len(self.exchanges)} exchanges were requested"
        )


def _fresh_ids(response: dict[str, Any], repeat: int) -> dict[str, Any]:
    """The response with new message and tool call ids, as a real API sends on every reply."""
    response = copy.deepcopy(response)
    suffix = f"r{repeat}"
    if "id" in response:  # error bodies carry none
        response["id"] = f"{response['id']}{suffix}"
    for choice in response.get("choices", []):
        for call in choice["message"].get("tool_calls") or []:
            call["id"] = f"{call['id']}{suffix}"
    for block in response.get("content", []) if response.get("type") == "message" else []:
        if block.get("type") == "tool_use":
            block["id"] = f"{block['id']}{suffix}"
    return response


def install_conversation(
    router: respx.Router, name: str, *, base_url: str | None = None
) -> RecordedConversation:
    """Serve conversation NAME on the provider's endpoint (or `base_url` + the API path)."""
    conversation = RecordedConversation(name)
    url = ENDPOINTS[conversation.provider]
    if base_url is not None:
        path = "/chat/completions" if conversation.provider == "openai" else "/v1/messages"
        url = base_url.rstrip("/") + path
    router.post(url).mock(side_effect=conversation)
    return conversation


def send_sdk_traffic_to_respx(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the SDKs' HTTP through respx.

    openai and anthropic send with httpx2, which respx does not patch; this hands each
    request to an httpx client instead, which the active respx router answers (and the
    suite's guard refuses when nothing matches).
    """

    async def via_respx(self: httpx2.AsyncHTTPTransport, request: httpx2.Request):
        legacy = httpx.Request(
            request.method,
            str(request.url),
            headers=list(request.headers.multi_items()),
            content=await request.aread(),
        )
        async with httpx.AsyncClient() as client:
            try:
                response = await client.send(legacy)
            except httpx.TimeoutException as exc:
                raise httpx2.ReadTimeout(str(exc), request=request) from exc
            except httpx.TransportError as exc:
                raise httpx2.ConnectError(str(exc), request=request) from exc
        return httpx2.Response(
            response.status_code,
            headers=list(response.headers.multi_items()),
            content=response.content,
            request=request,
        )

    monkeypatch.setattr(httpx2.AsyncHTTPTransport, "handle_async_request", via_respx)


def skip_retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make the SDKs retry at once; returns the list of waits they computed (Retry-After or
    backoff), so a test can check them without sleeping."""
    import anthropic
    import openai

    installed = getattr(openai.AsyncOpenAI._calculate_retry_timeout, "waits", None)
    if installed is not None:  # already in place for this test
        return installed
    waits: list[float] = []
    for client_class in (openai.AsyncOpenAI, anthropic.AsyncAnthropic):
        computed = client_class._calculate_retry_timeout

        def record(self, *args, _computed=computed, **kwargs) -> float:
            waits.append(_computed(self, *args, **kwargs))
            return 0.0

        record.waits = waits  # type: ignore[attr-defined]
        monkeypatch.setattr(client_class, "_calculate_retry_timeout", record)
    return waits


def use_recorded_llm(
    monkeypatch: pytest.MonkeyPatch,
    router: respx.Router,
    name: str,
    *,
    base_url: str | None = None,
) -> RecordedConversation:
    """All of the above: SDK traffic through respx, no retry waits, conversation NAME served."""
    send_sdk_traffic_to_respx(monkeypatch)
    conversation = install_conversation(router, name, base_url=base_url)
    conversation.retry_waits = skip_retry_waits(monkeypatch)
    return conversation


# -- scripted models on the wire -------------------------------------------------------------

# A script turn: tool calls as (name, arguments) pairs, or the final text answer.
ScriptTurn = list[tuple[str, dict[str, Any]]] | str


class ScriptedWire:
    """A respx side effect that answers each request with the next turn of a script, in the
    wire format of `provider` (OpenAI chat completions or Anthropic messages), with fresh
    call ids as the real APIs send.

    Like the real APIs, it refuses (HTTP 400, their error shapes) a conversation in which a
    tool call has no result right after it: OpenAI "Function calling"
    (https://platform.openai.com/docs/guides/function-calling) sends every tool_call_id back
    in a `tool` message after the assistant message; Anthropic "Tool use"
    (https://platform.claude.com/docs/en/agents-and-tools/tool-use/overview) needs a
    `tool_result` for every `tool_use` in the next user message.
    """

    def __init__(self, provider: str, turns: list[ScriptTurn]) -> None:
        self.provider = provider
        self.turns = turns
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        index = len(self.requests) - 1
        if index >= len(self.turns):
            raise AssertionError(f"request {index + 1}, but the script has {len(self.turns)}")
        missing = self.unanswered(body)
        if missing:
            return httpx.Response(400, json=self._refusal(missing))
        return httpx.Response(200, json=self.response(self.turns[index], index))

    def unanswered(self, body: dict[str, Any]) -> list[str]:
        """Ids of tool calls not answered right after the message that made them."""
        messages = body["messages"]
        for n, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            if self.provider == "openai":
                asked = [c["id"] for c in message.get("tool_calls") or []]
                answered = set()
                for later in messages[n + 1 :]:
                    if later["role"] != "tool":
                        break
                    answered.add(later["tool_call_id"])
            else:
                content = message["content"]
                asked = [b["id"] for b in content if b["type"] == "tool_use"]
                after = messages[n + 1]["content"] if n + 1 < len(messages) else []
                answered = {b["tool_use_id"] for b in after if b.get("type") == "tool_result"}
            missing = [i for i in asked if i not in answered]
            if missing:
                return missing
        return []

    def _refusal(self, missing: list[str]) -> dict[str, Any]:
        if self.provider == "openai":
            message = (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(missing)}"
            )
            return {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": None,
                }
            }
        message = (
            f"`tool_use` ids were found without `tool_result` blocks immediately after: "
            f"{', '.join(missing)}. Each `tool_use` block must have a corresponding "
            "`tool_result` block in the next message."
        )
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}

    def response(self, turn: ScriptTurn, index: int) -> dict[str, Any]:
        calls = [] if isinstance(turn, str) else turn
        text = turn if isinstance(turn, str) else None
        usage = (900 + 100 * index, 40 + 10 * len(calls))
        if self.provider == "openai":
            message: dict[str, Any] = {
                "role": "assistant",
                "content": text,
                "refusal": None,
                "annotations": [],
            }
            if calls:
                message["tool_calls"] = [
                    {
                        "id": f"call_s{index}x{n}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                    for n, (name, args) in enumerate(calls)
                ]
            return {
                "id": f"chatcmpl-scripted{index}",
                "object": "chat.completion",
                "created": 1764072000 + index,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": "tool_calls" if calls else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": usage[0],
                    "completion_tokens": usage[1],
                    "total_tokens": sum(usage),
                },
                "service_tier": "default",
                "system_fingerprint": "fp_560af6e559",
            }
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        content += [
            {"type": "tool_use", "id": f"toolu_s{index}x{n}", "name": name, "input": args}
            for n, (name, args) in enumerate(calls)
        ]
        return {
            "id": f"msg_scripted{index:02d}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": content,
            "stop_reason": "tool_use" if calls else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        }


def use_scripted_llm(
    monkeypatch: pytest.MonkeyPatch, router: respx.Router, provider: str, turns: list[ScriptTurn]
) -> ScriptedWire:
    """SDK traffic through respx, no retry waits, and `turns` served on `provider`'s endpoint."""
    send_sdk_traffic_to_respx(monkeypatch)
    skip_retry_waits(monkeypatch)
    wire = ScriptedWire(provider, turns)
    router.post(ENDPOINTS[provider]).mock(side_effect=wire)
    return wire
