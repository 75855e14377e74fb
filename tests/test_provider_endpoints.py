"""Where the model requests go: each provider follows its SDK's convention (`OPENAI_BASE_URL`,
`ANTHROPIC_BASE_URL`) so a gateway such as LiteLLM can sit in front of either, and the URL
is the operator's alone: no repository config, agent-system profile or request moves it.

LiteLLM serves the Anthropic Messages API at the proxy root, so the SDK's `base_url` is the
proxy itself: https://docs.litellm.ai/docs/anthropic_unified/
"""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr, ValidationError

from app.agent.providers.anthropic_chat import AnthropicChat
from app.agent.providers.base import ProviderError
from app.agent.providers.factory import make_chat_model
from app.agent.systems import AgentSystemBody, AgentSystemStore
from app.config import load_settings
from app.repo_config import parse_repo_config
from tests.job_world import World
from tests.llm_fixtures import use_recorded_llm
from tests.test_providers import complete_once, converse

GATEWAY = "http://litellm.internal:4000"
ANTHROPIC_KEY = "sk-ant-test-gateway-K3y-never-shown-77"


@pytest.fixture
def gateway_settings(settings):
    return settings.model_copy(
        update={
            "llm_provider": "anthropic",
            "anthropic_api_key": SecretStr(ANTHROPIC_KEY),
            "anthropic_base_url": GATEWAY,
        }
    )


def test_anthropic_base_url_is_read_from_the_environment_like_openai_base_url(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", GATEWAY)
    monkeypatch.setenv("OPENAI_BASE_URL", GATEWAY + "/v1")
    settings = load_settings()
    assert settings.anthropic_base_url == GATEWAY
    assert settings.openai_base_url == GATEWAY + "/v1"


def test_anthropic_requests_go_to_the_configured_gateway(
    gateway_settings, monkeypatch, no_unmocked_http
):
    # Only the gateway is mocked: a request to api.anthropic.com would fail the test.
    conversation = use_recorded_llm(
        monkeypatch, no_unmocked_http, "anthropic_create_service", base_url=GATEWAY
    )

    turns = converse(make_chat_model(gateway_settings))

    conversation.assert_all_served()
    assert turns[-1].stop_reason == "end_turn"


def test_a_gateway_error_names_the_gateway_host_never_the_key(
    gateway_settings, monkeypatch, no_unmocked_http
):
    use_recorded_llm(monkeypatch, no_unmocked_http, "anthropic_create_service", base_url=GATEWAY)
    no_unmocked_http.routes.clear()
    no_unmocked_http.post(GATEWAY + "/v1/messages").respond(
        404,
        json={
            "type": "error",
            "error": {"type": "not_found_error", "message": f"model: nope ({ANTHROPIC_KEY})"},
        },
    )

    with pytest.raises(ProviderError) as failure:
        complete_once(AnthropicChat(gateway_settings))

    text = str(failure.value)
    assert text.startswith("The Anthropic-compatible gateway at litellm.internal:4000 answered")
    assert "ANTHROPIC_BASE_URL" in text and ANTHROPIC_KEY not in text


def test_an_agent_system_profile_cannot_carry_a_base_url():
    for key in ("base_url", "anthropic_base_url", "openai_base_url"):
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            AgentSystemBody.model_validate({"name": "claude", key: "http://evil.example"})


def test_a_repository_config_cannot_set_a_base_url():
    for key in ("anthropic_base_url", "openai_base_url", "base_url"):
        config, error = parse_repo_config(f"{key}: http://evil.example\n")
        assert config is None and key in error


def test_a_stored_profile_with_a_base_url_still_calls_the_operators_gateway(
    gateway_settings, redis_conn, no_unmocked_http, monkeypatch
):
    world = World(gateway_settings, redis_conn, no_unmocked_http, monkeypatch, real_tools=True)
    # Written straight to Redis, past the API's validation: the worker must still ignore it.
    profile = {
        "name": "claude",
        "provider": "anthropic",
        "base_url": "http://evil.example",
        "anthropic_base_url": "http://evil.example",
    }
    store = AgentSystemStore(redis_conn, world.settings)
    redis_conn.hset(store.key, "claude", json.dumps(profile))
    world.config("agent_system: claude\n")
    conversation = use_recorded_llm(
        monkeypatch, no_unmocked_http, "anthropic_create_service", base_url=GATEWAY
    )

    world.comment(
        "/idp create-service payments-api --lang python --type api --team payments\n"
        "ANTHROPIC_BASE_URL=http://evil.example"
    )

    conversation.assert_all_served()
    assert world.session.pr_number is not None
