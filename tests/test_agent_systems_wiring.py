"""A repository picks an agent system in `.github/idp-copilot.yml`; the worker runs with its
provider, tools and loop limits — or says once why it cannot and runs the default."""

from __future__ import annotations

import pytest

from app.agent.systems import AgentSystem, AgentSystemStore
from tests.job_world import World

REQUEST = "/idp create-service payments-api --lang python"


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    return World(settings, redis_conn, no_unmocked_http, monkeypatch)


def _store(world: World, **fields) -> None:
    AgentSystemStore(world.connection, world.settings).put(AgentSystem(**fields))


def test_a_profile_with_tight_limits_stops_the_run_with_a_note(world):
    _store(world, name="tight", provider="rules", max_steps=2)
    world.config("agent_system: tight\n")
    world.comment(REQUEST)
    assert world.session.status == "failed"
    assert "step" in world.todo().lower()  # the loop guard's note names the limit it hit
    assert world.github.pulls == {}


def test_a_profile_narrows_the_tools_the_agent_may_use(world):
    _store(
        world,
        name="manifests-only",
        provider="rules",
        tools=["validate_project_name_and_type", "generate_k8s_manifests"],
    )
    world.config("agent_system: manifests-only\n")
    world.comment(REQUEST)
    assert world.session.pr_number is None  # open_pull_request is not in the profile


def test_an_unknown_profile_is_said_once_and_the_default_runs(world):
    world.config("agent_system: nowhere\n")
    world.comment(REQUEST)
    world.comment("/idp plan")
    said = [r for r in world.replies() if "agent system `nowhere`" in r]
    assert len(said) == 1
    assert world.session.pr_number is not None


def test_a_profile_whose_provider_has_no_key_falls_back_to_the_default(world):
    _store(world, name="gpt", provider="openai", model="gpt-4o-mini")
    world.config("agent_system: gpt\n")
    world.comment(REQUEST)
    said = [r for r in world.replies() if "agent system `gpt` cannot run here" in r]
    assert len(said) == 1
    assert "OPENAI_API_KEY" in said[0]
    assert world.session.pr_number is not None
