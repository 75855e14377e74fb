"""A whole create-service run with a language model, end to end: recorded OpenAI and Anthropic
conversations (tests/fixtures/llm/) drive the real loop — the provider and its SDK over respx,
the agent loop, the real registry with its generators and validators, `GitHubForge` against
the fake GitHub — to the same pull request the `rules` planner opens for the same command:
the same files, byte for byte, in one commit. A reply with malformed tool arguments gets an
error back that the model acts on, and the run still ends in that pull request.

The recordings predate the tools, so the first test holds them to the real input models: a
recording whose arguments a tool would not accept would prove nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import SecretStr

from app.agent.planner import WriteTodo
from app.domain.session import Session, session_id_for
from tests import payloads
from tests.job_world import World
from tests.llm_fixtures import load_conversation, use_recorded_llm
from tools.registry import default_registry

CREATE = "/idp create-service payments-api --lang python --type api --team payments"
RULES_ISSUE = 8  # the rules planner's run, on another issue of the same repository
PROVIDERS = ["openai", "anthropic"]
MODELS = {"openai": "openai (gpt-4o-mini)", "anthropic": "anthropic (claude-sonnet-4-5)"}
CONVERSATIONS = [
    f"{p}_{kind}" for p in PROVIDERS for kind in ("create_service", "malformed_arguments")
]


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    return World(settings, redis_conn, no_unmocked_http, monkeypatch, real_tools=True)


def use_provider(world: World, provider: str) -> None:
    """From now on the worker's settings choose `provider` (its default model, as recorded)."""
    world.settings = world.settings.model_copy(
        update={
            "llm_provider": provider,
            "openai_api_key": SecretStr("sk-test-full-run-0penai-0123456789"),
            "anthropic_api_key": SecretStr("sk-ant-test-full-run-0123456789"),
        }
    )


def rules_run(world: World) -> Session:
    """The same command under the `rules` planner, on issue #8."""
    world.comment(CREATE, number=RULES_ISSUE)
    session = world.store.get(session_id_for(payloads.REPO, RULES_ISSUE))
    assert session is not None and session.pr_url is not None
    return session


def pull_on(world: World, branch: str) -> dict[str, Any]:
    (pull,) = [p for p in world.github.pulls.values() if p["branch"] == branch]
    return pull


def section(body: str, heading: str) -> list[str]:
    """The lines of one `### heading` section of a pull request body."""
    return body.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0].strip().splitlines()


def recorded_calls(name: str) -> list[tuple[str, str, Any]]:
    """(id, tool, arguments) of every tool call the recording's model made; arguments that
    are not a JSON object are given as the text the model sent."""
    calls = []
    for exchange in load_conversation(name)["exchanges"]:
        response = exchange["response"]
        for choice in response.get("choices", []):
            for call in choice["message"].get("tool_calls") or []:
                raw = call["function"]["arguments"]
                try:
                    args: Any = json.loads(raw)
                except ValueError:
                    args = raw
                calls.append((call["id"], call["function"]["name"], args))
        for block in response.get("content", []) if response.get("type") == "message" else []:
            if block["type"] == "tool_use":
                calls.append((block["id"], block["name"], block["input"]))
    return calls


def tool_results(provider: str, body: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(call id, text, is_error) of the tool results at the end of a request body."""
    if provider == "openai":
        tail = []
        for message in reversed(body["messages"]):
            if message["role"] != "tool":
                break
            tail.insert(0, message)
        return [(m["tool_call_id"], m["content"], m["content"].startswith("Error")) for m in tail]
    blocks = body["messages"][-1]["content"]
    results = [b for b in blocks if b["type"] == "tool_result"]
    return [(b["tool_use_id"], b["content"], b["is_error"]) for b in results]


def usage_of(name: str) -> dict[str, int]:
    total = {"input_tokens": 0, "output_tokens": 0, "model_calls": 0}
    for exchange in load_conversation(name)["exchanges"]:
        usage = exchange["response"]["usage"]
        total["input_tokens"] += usage.get("input_tokens", usage.get("prompt_tokens", 0))
        total["output_tokens"] += usage.get("output_tokens", usage.get("completion_tokens", 0))
        total["model_calls"] += 1
    return total


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_every_recorded_tool_call_fits_the_real_tools_input_models(name):
    registry = default_registry()

    def assert_fits(tool: str, args: dict[str, Any]) -> None:
        spec = registry.get(tool)
        assert spec.name == tool, f"{tool} is an alias of {spec.name}"
        assert set(args) <= set(spec.input_model.model_fields), (tool, sorted(args))
        spec.input_model.model_validate(args)

    malformed = []
    for _, tool, args in recorded_calls(name):
        if not isinstance(args, dict):
            malformed.append(tool)
        elif tool == "write_todo":
            for task in WriteTodo.model_validate(args).tasks:
                assert_fits(task.tool, task.args)
        else:
            assert_fits(tool, args)
    assert malformed == (
        ["validate_project_name_and_type"] if name.endswith("malformed_arguments") else []
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_recorded_conversation_opens_the_pull_request_the_rules_planner_opens(
    world, monkeypatch, no_unmocked_http, provider
):
    rules = rules_run(world)
    use_provider(world, provider)
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, f"{provider}_create_service")

    assert world.comment(CREATE) == {"create-service": "done"}

    conversation.assert_all_served()
    session = world.session
    assert world.github.files(session.branch) == world.github.files(rules.branch)
    assert len(world.commits_on(session.branch)) == 1
    pull, rules_pull = pull_on(world, session.branch), pull_on(world, rules.branch)
    assert pull["title"] == rules_pull["title"] == "Add service payments-api"
    assert section(pull["body"], "Files") == section(rules_pull["body"], "Files")
    assert "A Python API for the payments team" in section(pull["body"], "Summary")[0]
    assert pull["body"].endswith("Closes #7\n")
    (check,) = [c for c in world.github.check_runs if c["head_sha"] == session.head_sha]
    assert check["conclusion"] == "success"
    (todo,) = [c["body"] for c in world.todo_comments() if c["number"] == session.number]
    assert f"**planner:** {MODELS[provider]}" in todo
    assert len(re.findall(r"^- \[x\] ", todo, re.MULTILINE)) == 6
    assert "- [ ]" not in todo
    assert session.token_usage == usage_of(f"{provider}_create_service")
    # The four generators of one reply ran together and were answered in one request.
    parallel = [call_id for call_id, tool, _ in recorded_calls(f"{provider}_create_service")]
    answered = tool_results(provider, conversation.requests[3])
    assert [r[0] for r in answered] == parallel[2:6]
    assert all(json.loads(text)["files"] and not error for _, text, error in answered)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_tool_arguments_get_an_error_back_and_the_run_still_opens_the_pull_request(
    world, monkeypatch, no_unmocked_http, provider
):
    use_provider(world, provider)
    name = f"{provider}_malformed_arguments"
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, name)
    (bad_id,) = [i for i, _, args in recorded_calls(name) if not isinstance(args, dict)]

    assert world.comment(CREATE) == {"create-service": "done"}

    conversation.assert_all_served()
    (answer,) = tool_results(provider, conversation.requests[2])
    assert answer[0] == bad_id and answer[2]
    assert "arguments of `validate_project_name_and_type` are not a JSON object" in answer[1]
    assert "Call it again with a JSON object that matches its schema" in answer[1]
    session = world.session
    validations = [s for s in session.steps if s.tool == "validate_project_name_and_type"]
    assert [s.ok for s in validations] == [True]  # the malformed call never reached the tool
    assert world.pull()["title"] == "Add service payments-api"
    assert len(world.commits_on(session.branch)) == 1
    assert len(world.github.files(session.branch)) > 20
