"""The OpenAI and Anthropic chat models against recorded conversations (respx), and the
provider factory's start-up checks."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from app.agent.providers.anthropic_chat import AnthropicChat, to_anthropic_messages
from app.agent.providers.base import Message, ModelTurn, ProviderError, ToolCall
from app.agent.providers.factory import check_provider_settings, make_chat_model
from app.agent.providers.openai_chat import OpenAIChat, parse_arguments, to_openai_messages
from app.config import ConfigError
from app.domain.service import ServiceRequest
from app.domain.todo import Task
from tests import payloads
from tests.llm_fixtures import (
    ENDPOINTS,
    load_conversation,
    send_sdk_traffic_to_respx,
    skip_retry_waits,
    use_recorded_llm,
)
from tools.spec import ToolSpec, to_anthropic_tool, to_openai_tool

OPENAI_KEY = "sk-test-0penai-K3y-never-shown-9f8e7d"
ANTHROPIC_KEY = "sk-ant-test-Anthr0pic-K3y-never-shown-1a2b"
SYSTEM = "You are IDP Copilot. Plan first with write_todo, then call the tools of the plan."
REQUEST = "> /idp create-service payments-api --lang python --type api --team payments"
SERVICE_ARGS = {
    "name": "payments-api",
    "language": "python",
    "type": "api",
    "team": "payments",
    "port": 8080,
    "replicas": 2,
}
GENERATORS = list(payloads.GENERATORS)


class Plan(BaseModel):
    title: str
    tasks: list[Task]


class Validate(BaseModel):
    name: str
    type: str
    language: str | None = None


class PullRequest(BaseModel):
    name: str


class Done(BaseModel):
    ok: bool = True


def _spec(name: str, model: type[BaseModel]) -> ToolSpec:
    return ToolSpec(name, f"{name} for the agent", model, Done, lambda args, ctx: Done())


TOOLS = [
    _spec("write_todo", Plan),
    _spec("validate_project_name_and_type", Validate),
    *[_spec(name, ServiceRequest) for name in GENERATORS],
    _spec("open_pull_request", PullRequest),
]


@pytest.fixture
def openai_settings(settings):
    return settings.model_copy(
        update={
            "llm_provider": "openai",
            "openai_api_key": SecretStr(OPENAI_KEY),
            "openai_base_url": None,
            "openai_model": "gpt-4o-mini",
        }
    )


@pytest.fixture
def anthropic_settings(settings):
    return settings.model_copy(
        update={
            "llm_provider": "anthropic",
            "anthropic_api_key": SecretStr(ANTHROPIC_KEY),
            "anthropic_model": "claude-sonnet-4-5",
        }
    )


def converse(model, tools=TOOLS, max_turns: int = 10) -> list[ModelTurn]:
    """Play the loop's part: answer every tool call (an error for malformed arguments) until
    the model gives a final answer. Returns the model's turns."""

    async def run() -> list[ModelTurn]:
        messages = [Message(role="user", content=REQUEST)]
        turns: list[ModelTurn] = []
        for _ in range(max_turns):
            turn = await model.complete(SYSTEM, messages, tools)
            turns.append(turn)
            if not turn.tool_calls:
                return turns
            messages.append(
                Message(role="assistant", content=turn.text, tool_calls=turn.tool_calls)
            )
            for call in turn.tool_calls:
                if call.arguments is None:
                    result = "error: the arguments are not a JSON object; send the call again"
                    messages.append(
                        Message(role="tool", tool_call_id=call.id, content=result, is_error=True)
                    )
                else:
                    messages.append(Message(role="tool", tool_call_id=call.id, content='{"ok":1}'))
        return turns

    return asyncio.run(run())


def complete_once(model) -> ModelTurn:
    return asyncio.run(model.complete(SYSTEM, [Message(role="user", content=REQUEST)], []))


# ------------------------------------------------------------------------------ OpenAI


def test_openai_create_service_conversation_parses_plan_calls_parallel_calls_and_answer(
    openai_settings, monkeypatch, no_unmocked_http
):
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, "openai_create_service")

    turns = converse(OpenAIChat(openai_settings))

    conversation.assert_all_served()
    names = [[call.name for call in turn.tool_calls] for turn in turns]
    assert names == [
        ["write_todo"],
        ["validate_project_name_and_type"],
        GENERATORS,
        ["open_pull_request"],
        [],
    ]
    plan = Plan.model_validate(turns[0].tool_calls[0].arguments)
    assert [task.tool for task in plan.tasks] == [
        "validate_project_name_and_type",
        *GENERATORS,
        "open_pull_request",
    ]
    assert turns[1].tool_calls[0].arguments == {
        "name": "payments-api",
        "type": "api",
        "language": "python",
    }
    assert all(call.arguments == SERVICE_ARGS for call in turns[2].tool_calls)
    assert len({call.id for call in turns[2].tool_calls}) == 4
    assert [turn.stop_reason for turn in turns] == ["tool_calls"] * 4 + ["stop"]
    assert "pull request for payments-api" in turns[4].text
    recorded = load_conversation("openai_create_service")["exchanges"]
    assert turns[0].usage.input_tokens == recorded[0]["response"]["usage"]["prompt_tokens"]
    assert turns[0].usage.output_tokens == recorded[0]["response"]["usage"]["completion_tokens"]


def test_openai_request_has_system_prompt_first_and_function_tools(
    openai_settings, monkeypatch, no_unmocked_http
):
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, "openai_create_service")

    converse(OpenAIChat(openai_settings))

    first = conversation.requests[0]
    assert first["model"] == "gpt-4o-mini"
    assert first["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": REQUEST},
    ]
    assert first["tools"] == [to_openai_tool(spec) for spec in TOOLS]
    assert first["tool_choice"] == "auto"


def test_openai_sends_tool_calls_back_as_json_and_results_with_matching_ids(
    openai_settings, monkeypatch, no_unmocked_http
):
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, "openai_create_service")

    turns = converse(OpenAIChat(openai_settings))

    parallel_ids = [call.id for call in turns[2].tool_calls]
    sent = conversation.requests[3]["messages"]
    assistant = sent[-5]
    assert assistant["role"] == "assistant"
    assert [call["id"] for call in assistant["tool_calls"]] == parallel_ids
    assert all(call["type"] == "function" for call in assistant["tool_calls"])
    assert [json.loads(call["function"]["arguments"]) for call in assistant["tool_calls"]] == [
        SERVICE_ARGS
    ] * 4
    assert [(m["role"], m["tool_call_id"]) for m in sent[-4:]] == [
        ("tool", call_id) for call_id in parallel_ids
    ]


def test_openai_malformed_arguments_are_kept_raw_and_the_run_goes_on(
    openai_settings, monkeypatch, no_unmocked_http
):
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, "openai_malformed_arguments")

    turns = converse(OpenAIChat(openai_settings))

    conversation.assert_all_served()
    bad = turns[1].tool_calls[0]
    assert bad.name == "validate_project_name_and_type"
    assert bad.arguments is None
    assert bad.raw_arguments == '{"name": "payments-api"'
    echoed = conversation.requests[2]["messages"][-2]["tool_calls"][0]
    assert echoed["function"]["arguments"] == '{"name": "payments-api"'
    assert conversation.requests[2]["messages"][-1]["tool_call_id"] == bad.id
    assert turns[2].tool_calls[0].arguments["name"] == "payments-api"
    assert turns[-1].text and not turns[-1].tool_calls


def test_openai_rejected_key_is_explained_without_echoing_it(
    openai_settings, monkeypatch, no_unmocked_http, caplog
):
    caplog.set_level(logging.DEBUG)
    send_sdk_traffic_to_respx(monkeypatch)
    waits = skip_retry_waits(monkeypatch)
    route = no_unmocked_http.post(ENDPOINTS["openai"]).respond(
        401,
        json={
            "error": {
                "message": f"Incorrect API key provided: {OPENAI_KEY}. You can find your API "
                "key at https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
    )

    with pytest.raises(ProviderError) as failure:
        complete_once(OpenAIChat(openai_settings))

    assert route.call_count == 1 and waits == []  # a rejected key is not retried
    assert "401" in str(failure.value) and "OPENAI_API_KEY" in str(failure.value)
    assert OPENAI_KEY not in str(failure.value)
    assert all(OPENAI_KEY not in record.getMessage() for record in caplog.records)


def test_openai_connection_errors_are_retried(openai_settings, monkeypatch, no_unmocked_http):
    send_sdk_traffic_to_respx(monkeypatch)
    skip_retry_waits(monkeypatch)
    answer = load_conversation("openai_rate_limited")["exchanges"][1]["response"]
    route = no_unmocked_http.post(ENDPOINTS["openai"]).mock(
        side_effect=[httpx.ConnectError("connection refused"), httpx.Response(200, json=answer)]
    )

    turn = complete_once(OpenAIChat(openai_settings))

    assert route.call_count == 2
    assert turn.text == answer["choices"][0]["message"]["content"]


def test_openai_timeouts_end_in_a_provider_error(openai_settings, monkeypatch, no_unmocked_http):
    send_sdk_traffic_to_respx(monkeypatch)
    skip_retry_waits(monkeypatch)
    route = no_unmocked_http.post(ENDPOINTS["openai"]).mock(
        side_effect=httpx.ReadTimeout("read timed out")
    )

    with pytest.raises(ProviderError, match="IDP_LLM_TIMEOUT"):
        complete_once(OpenAIChat(openai_settings))

    assert route.call_count == 4


def test_openai_base_url_reaches_a_compatible_server_without_a_key(
    openai_settings, monkeypatch, no_unmocked_http
):
    local = openai_settings.model_copy(
        update={"openai_api_key": None, "openai_base_url": "http://vllm.internal:8000/v1"}
    )
    check_provider_settings(local)
    conversation = use_recorded_llm(
        monkeypatch,
        no_unmocked_http,
        "openai_create_service",
        base_url="http://vllm.internal:8000/v1",
    )

    turns = converse(make_chat_model(local))

    conversation.assert_all_served()
    assert turns[-1].stop_reason == "stop"


def test_openai_unknown_model_names_the_setting_and_quotes_the_api(
    openai_settings, monkeypatch, no_unmocked_http
):
    send_sdk_traffic_to_respx(monkeypatch)
    no_unmocked_http.post(ENDPOINTS["openai"]).respond(
        404,
        json={
            "error": {
                "message": "The model `gpt-5-turbo` does not exist or you do not have access "
                "to it.",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        },
    )
    model = OpenAIChat(openai_settings.model_copy(update={"openai_model": "gpt-5-turbo"}))

    with pytest.raises(ProviderError) as failure:
        complete_once(model)

    assert str(failure.value) == (
        "OpenAI answered HTTP 404 (model gpt-5-turbo was not found: check OPENAI_MODEL and "
        "OPENAI_BASE_URL). The API said: The model `gpt-5-turbo` does not exist or you do not "
        "have access to it."
    )


def test_tool_arguments_that_are_not_a_json_object_are_kept_as_sent():
    assert parse_arguments('{"name": "payments-api"}') == ({"name": "payments-api"}, None)
    assert parse_arguments('["payments-api"]') == (None, '["payments-api"]')
    assert parse_arguments('{"name": ') == (None, '{"name": ')
    # Compatible servers send "" for a call without arguments.
    assert parse_arguments("") == ({}, None)


def test_openai_conversion_leaves_tool_calls_out_of_plain_assistant_text():
    messages = [
        Message(role="user", content="hello"),
        Message(role="assistant", content="Hi, what should the service be called?"),
    ]

    sent = to_openai_messages(SYSTEM, messages)

    assert sent[-1] == {"role": "assistant", "content": "Hi, what should the service be called?"}


# ------------------------------------------------------------------------------ Anthropic


def test_anthropic_create_service_conversation_parses_text_tool_use_and_answer(
    anthropic_settings, monkeypatch, no_unmocked_http
):
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, "anthropic_create_service")

    turns = converse(AnthropicChat(anthropic_settings))

    conversation.assert_all_served()
    assert [[call.name for call in turn.tool_calls] for turn in turns] == [
        ["write_todo"],
        ["validate_project_name_and_type"],
        GENERATORS,
        ["open_pull_request"],
        [],
    ]
    assert turns[0].text == "I'll plan the work first, then run the steps."
    plan = Plan.model_validate(turns[0].tool_calls[0].arguments)
    assert plan.tasks[-1].depends_on == GENERATORS
    assert all(call.arguments == SERVICE_ARGS for call in turns[2].tool_calls)
    assert [turn.stop_reason for turn in turns] == ["tool_use"] * 4 + ["end_turn"]
    recorded = load_conversation("anthropic_create_service")["exchanges"]
    assert turns[2].usage.input_tokens == recorded[2]["response"]["usage"]["input_tokens"]
    assert turns[2].usage.output_tokens == recorded[2]["response"]["usage"]["output_tokens"]


def test_anthropic_request_has_top_level_system_and_anthropic_tools(
    anthropic_settings, monkeypatch, no_unmocked_http
):
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, "anthropic_create_service")

    converse(AnthropicChat(anthropic_settings))

    first = conversation.requests[0]
    assert first["system"] == SYSTEM
    assert first["model"] == "claude-sonnet-4-5"
    assert first["max_tokens"] == 4096
    assert first["messages"] == [{"role": "user", "content": [{"type": "text", "text": REQUEST}]}]
    assert first["tools"] == [to_anthropic_tool(spec) for spec in TOOLS]


def test_anthropic_sends_parallel_results_in_one_user_message_with_matching_ids(
    anthropic_settings, monkeypatch, no_unmocked_http
):
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, "anthropic_create_service")

    turns = converse(AnthropicChat(anthropic_settings))

    sent = conversation.requests[3]["messages"]
    roles = [message["role"] for message in sent]
    assert roles == ["user", "assistant"] * 3 + ["user"]
    parallel_ids = [call.id for call in turns[2].tool_calls]
    assistant = sent[-2]["content"]
    assert assistant[0] == {"type": "text", "text": turns[2].text}
    assert [(b["type"], b["id"], b["input"]) for b in assistant[1:]] == [
        ("tool_use", call_id, SERVICE_ARGS) for call_id in parallel_ids
    ]
    assert [(b["type"], b["tool_use_id"], b["is_error"]) for b in sent[-1]["content"]] == [
        ("tool_result", call_id, False) for call_id in parallel_ids
    ]


def test_anthropic_input_that_is_not_an_object_is_kept_raw_and_the_run_goes_on(
    anthropic_settings, monkeypatch, no_unmocked_http
):
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, "anthropic_malformed_arguments")

    turns = converse(AnthropicChat(anthropic_settings))

    conversation.assert_all_served()
    bad = turns[1].tool_calls[0]
    assert (bad.arguments, bad.raw_arguments) == (None, '{"name": "payments-api"')
    result = conversation.requests[2]["messages"][-1]["content"]
    assert result == [
        {
            "type": "tool_result",
            "tool_use_id": bad.id,
            "content": "error: the arguments are not a JSON object; send the call again",
            "is_error": True,
        }
    ]
    assert turns[-1].stop_reason == "end_turn"


def test_anthropic_rejected_key_is_explained_without_echoing_it(
    anthropic_settings, monkeypatch, no_unmocked_http
):
    send_sdk_traffic_to_respx(monkeypatch)
    no_unmocked_http.post(ENDPOINTS["anthropic"]).respond(
        401,
        json={
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            "request_id": "req_011CVf401Wq2Lr5Tx8Yz1Ab4Cd7",
        },
    )

    with pytest.raises(ProviderError) as failure:
        complete_once(AnthropicChat(anthropic_settings))

    assert "401" in str(failure.value) and "ANTHROPIC_API_KEY" in str(failure.value)
    assert ANTHROPIC_KEY not in str(failure.value)


def test_anthropic_conversion_merges_a_note_after_tool_results_into_the_same_user_turn():
    messages = [
        Message(role="user", content="create payments-api"),
        Message(
            role="assistant",
            tool_calls=[
                ToolCall(id="toolu_a", name="setup_observability", arguments={"name": "p"}),
                ToolCall(id="toolu_b", name="generate_documentation", arguments=None),
            ],
        ),
        Message(role="tool", tool_call_id="toolu_a", content="done"),
        Message(role="tool", tool_call_id="toolu_b", content="bad arguments", is_error=True),
        Message(role="user", content="Note: one task is left."),
    ]

    sent = to_anthropic_messages(messages)

    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"][1]["input"] == {}
    assert [block["type"] for block in sent[2]["content"]] == [
        "tool_result",
        "tool_result",
        "text",
    ]


# ------------------------------------------------------------------------------ both


@pytest.fixture
def make_model(openai_settings, anthropic_settings):
    def make(provider: str):
        if provider == "openai":
            return OpenAIChat(openai_settings)
        return AnthropicChat(anthropic_settings)

    return make


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_429_is_retried_after_the_wait_retry_after_asks_for(
    provider, make_model, monkeypatch, no_unmocked_http
):
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, f"{provider}_rate_limited")

    turn = complete_once(make_model(provider))

    assert conversation.served == 2
    assert conversation.retry_waits == [2.0]
    assert turn.text.startswith("Service names must be DNS-1123 labels")


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_server_errors_are_retried_until_the_answer_comes(
    provider, make_model, monkeypatch, no_unmocked_http
):
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, f"{provider}_server_errors")

    turn = complete_once(make_model(provider))

    assert conversation.served == 3
    assert len(conversation.retry_waits) == 2
    assert turn.text.startswith("Service names must be DNS-1123 labels")


@pytest.mark.parametrize(
    ("provider", "conversation_name", "expected"),
    [
        ("openai", "openai_unavailable", "OpenAI answered HTTP 503 (a server error) after 3"),
        (
            "anthropic",
            "anthropic_overloaded",
            "Anthropic answered HTTP 529 (the API is overloaded)",
        ),
    ],
)
def test_after_the_last_retry_the_error_names_provider_and_status_never_the_key(
    provider, conversation_name, expected, make_model, monkeypatch, no_unmocked_http, caplog
):
    caplog.set_level(logging.DEBUG)
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, conversation_name)

    with pytest.raises(ProviderError) as failure:
        complete_once(make_model(provider))

    message = str(failure.value)
    assert conversation.served == 4  # the first try and three retries
    assert message.startswith(expected) and "after 3 retries" in message
    logged = " ".join(record.getMessage() for record in caplog.records)
    for key in (OPENAI_KEY, ANTHROPIC_KEY):
        assert key not in message and key not in logged


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_model_that_repeats_itself_sends_the_same_call_with_fresh_ids(
    provider, make_model, monkeypatch, no_unmocked_http
):
    use_recorded_llm(monkeypatch, no_unmocked_http, f"{provider}_repeats_itself")

    turns = converse(make_model(provider), max_turns=6)

    repeated = [turn.tool_calls[0] for turn in turns[1:]]
    assert len(repeated) == 5
    assert {(call.name, json.dumps(call.arguments)) for call in repeated} == {
        (
            "validate_project_name_and_type",
            json.dumps({"name": "payments-api", "type": "api", "language": "python"}),
        )
    }
    assert len({call.id for call in repeated}) == 5


# ------------------------------------------------------------------------------ factory


def test_rules_provider_needs_no_model(settings):
    assert make_chat_model(settings) is None


def test_factory_builds_the_chosen_provider_with_its_model(openai_settings, anthropic_settings):
    openai_model = make_chat_model(openai_settings.model_copy(update={"openai_model": "gpt-4.1"}))
    anthropic_model = make_chat_model(anthropic_settings)

    assert (openai_model.name, openai_model.model) == ("openai", "gpt-4.1")
    assert (anthropic_model.name, anthropic_model.model) == ("anthropic", "claude-sonnet-4-5")


def test_openai_without_key_or_base_url_fails_at_start_up_saying_what_to_set(openai_settings):
    for missing in (None, SecretStr(""), SecretStr("  ")):
        with pytest.raises(ConfigError) as failure:
            check_provider_settings(openai_settings.model_copy(update={"openai_api_key": missing}))
        assert str(failure.value) == (
            "IDP_LLM_PROVIDER=openai needs OPENAI_API_KEY "
            "(or OPENAI_BASE_URL for a server that needs no key)"
        )


def test_anthropic_without_key_fails_at_start_up_saying_what_to_set(anthropic_settings):
    with pytest.raises(ConfigError, match="IDP_LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY"):
        make_chat_model(anthropic_settings.model_copy(update={"anthropic_api_key": None}))
