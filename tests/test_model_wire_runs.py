"""Models that skip steps, on both wire formats, end to end: the provider and its SDK over
respx (a scripted model that refuses unanswered tool calls, as the APIs do), the real loop,
tools and validators, `GitHubForge` against the fake GitHub. Whatever the model leaves out
(the plan, the pull request, everything after the first tool), the run ends with the pull
request the rules planner opens for the same command and a todo whose finished tasks are
ticked.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from app.agent.planner import KB_TOOL
from app.agent.providers.base import Message, ProviderError, ToolCall
from app.agent.providers.factory import make_chat_model
from tests.job_world import World
from tests.llm_fixtures import ScriptTurn, use_scripted_llm
from tests.test_llm_full_run import CREATE, rules_run, use_provider
from tests.test_providers import GENERATORS
from tests.test_providers import SERVICE_ARGS as SERVICE

VALIDATE = ("validate_project_name_and_type", {"name": "payments-api", "type": "api"})
GENERATE = [(name, SERVICE) for name in GENERATORS]
PUBLISH = ("open_pull_request", {"summary": "A Python API for the payments team."})
PLAN_WITHOUT_PR = (
    "write_todo",
    {
        "tasks": [
            {"id": "v", "title": "Validate", "tool": VALIDATE[0], "args": VALIDATE[1]},
            *[
                {"id": f"g{n}", "title": name, "tool": name, "args": SERVICE, "depends_on": ["v"]}
                for n, name in enumerate(GENERATORS)
            ],
        ]
    },
)
SCRIPTS: dict[str, list[ScriptTurn]] = {
    "never_plans": [[VALIDATE], GENERATE, [PUBLISH], "Opened the pull request."],
    "never_publishes": [[PLAN_WITHOUT_PR], [VALIDATE], GENERATE, "The files are ready."],
    "everything_in_one_turn": [[VALIDATE, *GENERATE, PUBLISH], "Done."],
    "stops_after_one_tool": [[VALIDATE], "payments-api is a valid name."],
    "the_issue_case": [[VALIDATE], GENERATE, "All four parts are generated."],
}
PROVIDERS = ["openai", "anthropic"]


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    return World(settings, redis_conn, no_unmocked_http, monkeypatch, real_tools=True)


def task_lines(todo: str) -> list[str]:
    return [line for line in todo.splitlines() if line.startswith("- [")]


@pytest.mark.parametrize("script", list(SCRIPTS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_whatever_the_model_skips_the_run_ends_in_one_pull_request_and_a_ticked_todo(
    world, monkeypatch, no_unmocked_http, provider, script
):
    rules = rules_run(world)
    use_provider(world, provider)
    wire = use_scripted_llm(monkeypatch, no_unmocked_http, provider, SCRIPTS[script])

    result = world.comment(CREATE)

    assert len(wire.requests) == len(SCRIPTS[script])  # the model was heard to the end
    session = world.session
    assert result == {"create-service": session.status} and session.status in ("done", "waiting")
    mine = [p for p in world.github.pulls.values() if p["branch"] == session.branch]
    assert len(mine) == 1 and mine[0]["title"] == "Add service payments-api"
    assert world.github.files(session.branch) == world.github.files(rules.branch)
    assert len(world.commits_on(session.branch)) == 1
    (todo,) = [c["body"] for c in world.todo_comments() if c["number"] == session.number]
    lines = task_lines(todo)
    finished = [t for t in session.todo.tasks if t.status in ("done", "skipped")]
    assert len(lines) == len(session.todo.tasks)
    assert len(re.findall(r"^- \[x\] ", todo, re.MULTILINE)) == len(finished) >= 6
    assert all(t.status in ("done", "skipped", "waiting_approval") for t in session.todo.tasks)
    assert any(line.startswith("- [x] Open the pull request") for line in lines)
    # A tool the model ran once ran once: the App reuses, never repeats.
    runs = [s.tool for s in session.steps if s.ok]
    assert all(runs.count(name) == 1 for name in [VALIDATE[0], *GENERATORS, PUBLISH[0]])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_issue_case_validate_then_four_parallel_generators_then_text(
    world, monkeypatch, no_unmocked_http, provider
):
    use_provider(world, provider)
    wire = use_scripted_llm(monkeypatch, no_unmocked_http, provider, SCRIPTS["the_issue_case"])

    world.comment(CREATE)

    session = world.session
    # the four results of one turn went back together, in one request
    last = wire.requests[-1]["messages"]
    if provider == "openai":
        answered = [m["tool_call_id"] for m in last if m["role"] == "tool"][-4:]
        assert answered == [f"call_s1x{n}" for n in range(4)]
    else:
        blocks = last[-1]["content"]
        assert [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"] == [
            f"toolu_s1x{n}" for n in range(4)
        ]
    assert "**plan:** the rules planner's (the model wrote none)" in world.todo()
    statuses = {t.tool: t.status for t in session.todo.tasks}
    assert statuses[KB_TOOL] == "done" and statuses["open_pull_request"] == "done"
    assert session.pr_number is not None and session.status == "waiting"
    assert "The model stopped with 2 task(s) of the plan left" in world.todo()


@pytest.mark.parametrize(
    ("provider", "said"),
    [
        ("openai", "The following tool_call_ids did not have response messages: c1"),
        ("anthropic", "`tool_use` ids were found without `tool_result` blocks immediately after"),
    ],
)
def test_the_scripted_wire_refuses_a_tool_call_left_unanswered_as_the_api_does(
    world, monkeypatch, no_unmocked_http, provider, said
):
    """Contract of the stand-in (docs cited in `ScriptedWire`): a 400 in the API's shape."""
    use_provider(world, provider)
    use_scripted_llm(monkeypatch, no_unmocked_http, provider, ["never sent"])
    model = make_chat_model(world.settings)
    messages = [
        Message(role="user", content="Create payments-api"),
        Message(role="assistant", tool_calls=[ToolCall(id="c1", name="x", arguments={})]),
        Message(role="user", content="What next?"),
    ]

    with pytest.raises(ProviderError) as refused:
        asyncio.run(model.complete("system", messages, []))

    assert "answered HTTP 400" in str(refused.value) and said in str(refused.value)
