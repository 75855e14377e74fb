"""Budgets: commands per comment, read-level commands per user and hour, model tokens per
installation and day, and the few writes a comment of refused commands costs. Driven the
way GitHub drives the App (tests/job_world.py): writes are counted on the GitHub stand-in,
model calls on the respx route of the OpenAI chat completions endpoint."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from app.agent.providers.base import Message, ModelTurn, ProviderError, Usage
from app.agent.providers.budgeted import BudgetedChatModel, TokenBudgetSpent
from app.agent.providers.scripted import ScriptedChatModel
from app.budgets import DAY, Window, spent
from tests.job_world import World
from tests.llm_fixtures import ENDPOINTS


def completion(text: str, prompt_tokens: int = 120, completion_tokens: int = 30) -> dict:
    """A chat completion as OpenAI returns it, usage included.
    https://platform.openai.com/docs/api-reference/chat/object"""
    return {
        "id": "chatcmpl-budget",
        "object": "chat.completion",
        "created": 1733380000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_budget",
    }


def openai_world(settings, redis_conn, router, monkeypatch, **overrides) -> World:
    base = settings.model_copy(
        update={
            "llm_provider": "openai",
            "openai_api_key": SecretStr("sk-test-budget-000000000000"),
            "openai_model": "gpt-4o-mini",
            **overrides,
        }
    )
    return World(base, redis_conn, router, monkeypatch)


@pytest.fixture
def model_route(no_unmocked_http):
    answer = "Keep readiness cheap [idp-copilot/guidelines/probes.md#readiness-probe]."
    return no_unmocked_http.post(ENDPOINTS["openai"]).mock(
        return_value=httpx.Response(200, json=completion(answer))
    )


def test_300_ask_lines_from_a_read_only_user_cost_two_writes_and_no_model_call(
    settings, redis_conn, no_unmocked_http, monkeypatch, model_route
):
    world = openai_world(settings, redis_conn, no_unmocked_http, monkeypatch)
    body = "\n".join(f"/idp ask question number {i}?" for i in range(300))

    assert world.comment(body, sender="bob") == {"commands": "too many"}

    assert model_route.call_count == 0
    (reply,) = world.replies()
    assert "holds 300 `/idp` commands" in reply and "at most 10" in reply
    assert "none of them ran" in reply
    assert world.reactions() == ["confused"]
    assert len(world.writes()) == 2  # the reply and the reaction


def test_a_comment_within_the_command_budget_runs_each_command(
    settings, redis_conn, no_unmocked_http, monkeypatch, model_route
):
    world = openai_world(settings, redis_conn, no_unmocked_http, monkeypatch)
    body = "\n".join(f"/idp ask how do probe {i} work?" for i in range(10))

    assert world.comment(body, sender="bob") == {"ask": "answered"}

    assert model_route.call_count == 10
    assert len(world.replies()) == 10


def test_read_level_commands_past_the_hourly_budget_are_said_once_then_nothing(
    settings, redis_conn, no_unmocked_http, monkeypatch
):
    world = openai_world(
        settings, redis_conn, no_unmocked_http, monkeypatch, read_commands_per_hour=3
    )

    outcomes = [world.comment("/idp status", sender="bob") for _ in range(5)]

    assert outcomes[:3] == [{"status": "answered"}] * 3
    assert outcomes[3:] == [{"status": "rate-limited"}] * 2
    replies = world.replies()
    assert len(replies) == 4  # three answers, one notice
    assert "3 read-level commands" in replies[3] and "once an hour" in replies[3]
    # The notice comes alone; the fifth comment gets no write at all.
    assert world.reactions() == ["eyes", "rocket"] * 3
    writes_before = len(world.writes())
    world.comment("/idp help", sender="bob")
    assert len(world.writes()) == writes_before


def test_the_hourly_budget_is_per_user_and_repository(
    settings, redis_conn, no_unmocked_http, monkeypatch
):
    world = openai_world(
        settings, redis_conn, no_unmocked_http, monkeypatch, read_commands_per_hour=1
    )

    assert world.comment("/idp status", sender="bob") == {"status": "answered"}
    assert world.comment("/idp status", sender="alice") == {"status": "answered"}
    assert world.comment("/idp status", sender="bob") == {"status": "rate-limited"}


def test_refused_commands_cost_one_reply_and_one_reaction_per_comment(
    settings, redis_conn, no_unmocked_http, monkeypatch
):
    world = openai_world(settings, redis_conn, no_unmocked_http, monkeypatch)
    verbs = ["plan", "apply", "retry", "cancel", "deploy staging", "answer yes", "set replicas=3"]
    body = "\n".join(f"/idp {verb}" for verb in verbs)

    first = world.comment(body, sender="bob")
    second = world.comment(body, sender="bob")

    assert set(first.values()) == {"refused"} and first == second
    (reply,) = world.replies()  # the second comment: only the reaction
    for verb in ("plan", "apply", "retry", "cancel", "deploy", "answer", "set"):
        assert f"`/idp {verb}` needs" in reply
    assert world.reactions() == ["confused", "confused"]
    assert len(world.writes()) == 3


def test_the_daily_token_budget_stops_model_calls_and_is_said_once(
    settings, redis_conn, no_unmocked_http, monkeypatch, model_route
):
    # Each call costs 150 tokens: the second call starts under 200, the third does not.
    world = openai_world(
        settings, redis_conn, no_unmocked_http, monkeypatch, llm_tokens_per_day=200
    )

    for i in range(4):
        assert world.comment(f"/idp ask how do readiness probes work {i}?") == {"ask": "answered"}

    assert model_route.call_count == 2
    notices = [r for r in world.replies() if "model tokens for today" in r]
    assert len(notices) == 1 and "200 model tokens" in notices[0]
    assert "IDP_LLM_TOKENS_PER_DAY" in notices[0]
    # The later questions are still answered, from the guideline sections.
    assert sum("**Sources**" in r for r in world.replies()) == 4


def test_the_token_budget_wrapper_charges_usage_and_refuses_once_spent(settings, redis_conn):
    limited = settings.model_copy(update={"llm_tokens_per_day": 100})
    turn = ModelTurn(text="ok", usage=Usage(input_tokens=70, output_tokens=40))
    inner = ScriptedChatModel([turn, turn])
    model = BudgetedChatModel(inner, redis_conn, limited, installation=42)
    ask = [Message(role="user", content="hi")]

    assert asyncio.run(model.complete("s", ask, [])).text == "ok"
    assert spent(redis_conn, limited, Window.now(DAY), "llm-tokens", 42) == 110
    with pytest.raises(TokenBudgetSpent) as refused:
        asyncio.run(model.complete("s", ask, []))

    assert isinstance(refused.value, ProviderError)  # the loop shows it as a todo line
    assert "100 model tokens" in str(refused.value)
    assert len(inner.requests) == 1
    assert model.spent_notice() is not None and model.spent_notice() is None
    other = BudgetedChatModel(ScriptedChatModel([turn]), redis_conn, limited, installation=7)
    assert asyncio.run(other.complete("s", ask, [])).text == "ok"  # per installation
    key = limited.key("budget", "llm-tokens", 42, Window.now(DAY).number)
    assert 0 < redis_conn.ttl(key) <= DAY + 60


def test_a_config_file_nested_too_deep_is_one_sentence_not_a_recursion_error(
    settings, redis_conn, no_unmocked_http, monkeypatch
):
    world = openai_world(settings, redis_conn, no_unmocked_http, monkeypatch)
    world.config("labels: " + "[" * 5000 + "]" * 5000 + "\n")

    assert world.comment("/idp status", sender="bob") == {"status": "answered"}
    assert world.comment("/idp help", sender="bob") == {"help": "answered"}

    problems = [r for r in world.replies() if "is not valid" in r]
    assert len(problems) == 1  # said once per distinct error and repository
    assert "nest deeper than 20 levels" in problems[0]
