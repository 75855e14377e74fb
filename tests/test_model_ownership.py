"""The App owns the todo and the pull request whatever the model does: it plans when the model
does not, ticks what runs, finishes a structured request's plan when the model stops early,
and publishes files that are not on the pull request. One turn's calls run concurrently,
in the order the plan's `depends_on` gives; a broken plan goes back to the model."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from app.agent.loop import Agent
from app.agent.providers.base import ModelTurn, ToolCall, Usage
from app.agent.providers.scripted import ScriptedChatModel
from app.domain.service import ServiceRequest
from app.domain.session import Session, session_id_for
from app.state import SessionStore
from tests.fakes import FakeForge, ServiceTools, install_fake_validator
from tools.registry import ToolRegistry
from tools.spec import ToolSpec

REQ = {"request": {"name": "payments-api", "language": "go", "type": "api"}}
FLAT = {"name": "payments-api", "language": "go"}
GENERATORS = [
    ("generate_k8s_manifests", REQ),
    ("setup_cicd_pipeline", FLAT),
    ("setup_observability", {"service_name": "payments-api"}),
    ("generate_documentation", FLAT),
]
# A call that cannot finish until its partner has started: only concurrent calls pass.
MEETING_TIMEOUT = 10.0


@pytest.fixture
def world(settings, redis_conn, monkeypatch):
    install_fake_validator(monkeypatch)
    return ServiceTools(), FakeForge(), SessionStore(redis_conn, settings)


def new_session(request: bool = True, text: str | None = None) -> Session:
    return Session(
        id=session_id_for("acme/shop", 7),
        repo="acme/shop",
        number=7,
        requester="alice",
        request=ServiceRequest(name="payments-api", language="go") if request else None,
        request_text=text,
        command="create-service" if request else "request",
    )


def run(settings, world, session, model) -> Session:
    tools, forge, store = world
    agent = Agent(settings, ToolRegistry(tools.specs()), forge, store, chat_model=model)
    return asyncio.run(agent.run(session))


def call(name: str, args: dict, cid: str) -> ToolCall:
    return ToolCall(id=cid, name=name, arguments=args)


def turn(*calls: ToolCall, text: str | None = None) -> ModelTurn:
    return ModelTurn(text=text, tool_calls=list(calls), usage=Usage(input_tokens=1))


def generators(prefix: str = "g") -> list[ToolCall]:
    return [call(name, args, f"{prefix}{n}") for n, (name, args) in enumerate(GENERATORS)]


def lines(session: Session) -> list[str]:
    return [line for line in session.rendered_todo.splitlines() if line.startswith("- [")]


def ticked(session: Session) -> list[str]:
    return [line for line in lines(session) if line.startswith("- [x]")]


def tool_replies(model: ScriptedChatModel, request: int) -> dict[str, tuple[str, bool]]:
    """call id → (content, is_error) of the tool results the model saw in request N."""
    return {
        m.tool_call_id: (m.content, m.is_error)
        for m in model.requests[request].messages
        if m.role == "tool"
    }


def meet(tools: ServiceTools, *names: str) -> None:
    """Each named tool waits, inside its call, until all of them are running at once."""
    arrived: set[str] = set()
    everyone = asyncio.Event()

    async def hook(name, args, ctx):
        arrived.add(name)
        if arrived >= set(names):
            everyone.set()
        async with asyncio.timeout(MEETING_TIMEOUT):
            await everyone.wait()

    for name in names:
        tools.hooks[name] = hook


# -- concurrency and order ------------------------------------------------------------------


def test_parallel_calls_of_one_turn_really_run_at_the_same_time(settings, world):
    tools, forge, _ = world
    meet(tools, *(name for name, _ in GENERATORS))
    model = ScriptedChatModel([turn(*generators()), turn(text="Done.")])

    session = run(settings, world, new_session(request=False), model)

    replies = tool_replies(model, 1)
    assert [error for _, error in replies.values()] == [False] * 4, replies
    assert all(tools.calls[name] == 1 for name, _ in GENERATORS)
    assert len(forge.pulls) == 1 and session.status == "done"


def test_one_turn_runs_in_the_waves_its_plan_depends_on(settings, world):
    tools, forge, _ = world
    meet(tools, *(name for name, _ in GENERATORS))  # the middle wave still runs together
    plan = [
        {"id": "v", "title": "Validate", "tool": "validate_project_name_and_type"},
        *[
            {"id": f"g{n}", "title": name, "tool": name, "depends_on": ["v"]}
            for n, (name, _) in enumerate(GENERATORS)
        ],
        {
            "id": "pr",
            "title": "Pull request",
            "tool": "open_pull_request",
            "depends_on": ["g0", "g1", "g2", "g3"],
        },
    ]
    everything = [
        call("open_pull_request", {"summary": "All at once."}, "p"),
        *generators(),
        call("validate_project_name_and_type", {"name": "payments-api"}, "v"),
    ]
    model = ScriptedChatModel(
        [turn(call("write_todo", {"tasks": plan}, "w")), turn(*everything), turn(text="ok")]
    )

    session = run(settings, world, new_session(), model)

    assert tools.order[0] == "validate_project_name_and_type"
    assert sorted(tools.order[1:]) == sorted(name for name, _ in GENERATORS)
    (pull,) = forge.pulls.values()
    assert "All at once." in pull.body and len(forge.commits) == 1
    assert len(ticked(session)) == 6 == len(lines(session))
    # answered in the order the model called them, whatever order they ran in
    assert list(tool_replies(model, 2))[1:] == [c.id for c in everything]


@pytest.mark.parametrize(
    ("tasks", "problem"),
    [
        (
            [{"id": "a", "title": "A", "depends_on": ["b"]}, {"id": "b", "title": "B"}],
            None,
        ),
        (
            [
                {"id": "a", "title": "A", "depends_on": ["c"]},
                {"id": "b", "title": "B", "depends_on": ["a"]},
                {"id": "c", "title": "C", "depends_on": ["b"]},
            ],
            "depends_on goes round in a cycle: a → c → b → a",
        ),
        (
            [{"id": "a", "title": "A", "depends_on": ["t9"]}],
            "task `a` depends on `t9`, which no task has as id",
        ),
        ([{"id": "a", "title": "A", "depends_on": ["a"]}], "task `a` depends on itself"),
    ],
)
def test_a_plan_with_a_cycle_or_an_unknown_id_goes_back_to_the_model(
    settings, world, tasks, problem
):
    model = ScriptedChatModel([turn(call("write_todo", {"tasks": tasks}, "w")), turn(text="ok")])
    session = run(settings, world, new_session(request=False), model)

    content, is_error = tool_replies(model, 1)["w"]
    if problem is None:
        assert not is_error and [t.id for t in session.todo.tasks] == ["a", "b"]
    else:
        assert is_error and content.startswith("Plan not saved: ") and problem in content
        assert "call `write_todo` again" in content
        assert session.todo.tasks == []


def test_a_call_before_the_task_it_depends_on_is_refused_and_the_model_recovers(settings, world):
    tools, forge, _ = world
    plan = [
        {"id": "v", "title": "Validate", "tool": "validate_project_name_and_type"},
        {"id": "k", "title": "Manifests", "tool": "generate_k8s_manifests", "depends_on": ["v"]},
    ]
    model = ScriptedChatModel(
        [
            turn(call("write_todo", {"tasks": plan}, "w")),
            turn(call("generate_k8s_manifests", REQ, "k1")),
            turn(call("validate_project_name_and_type", {"name": "payments-api"}, "v1")),
            turn(call("generate_k8s_manifests", REQ, "k2")),
            turn(text="Done."),
        ]
    )

    session = run(settings, world, new_session(request=False), model)

    content, is_error = tool_replies(model, 2)["k1"]
    assert is_error and content == (
        "Not run: task `k` depends on `v` (`validate_project_name_and_type`), which has not run "
        "yet. Call those first (or in the same reply), or change `depends_on` with `write_todo`."
    )
    assert tools.order == ["validate_project_name_and_type", "generate_k8s_manifests"]
    assert len(forge.pulls) == 1 and session.status == "done"
    assert [line[:5] for line in lines(session)] == ["- [x]"] * 3  # + the App's publish task


# -- the model skips a step -----------------------------------------------------------------


def test_a_model_that_never_plans_gets_one_task_per_call_and_a_pull_request(settings, world):
    _, forge, _ = world
    model = ScriptedChatModel(
        [
            turn(call("validate_project_name_and_type", {"name": "payments-api"}, "v")),
            turn(*generators()),
            turn(text="All generated."),
        ]
    )

    session = run(settings, world, new_session(request=False, text="a Go API"), model)

    assert session.status == "done" and len(forge.pulls) == 1
    assert "**plan:** one task per tool call (the model wrote none)" in session.rendered_todo
    assert ticked(session) == lines(session) and len(lines(session)) == 6
    assert lines(session)[-1].startswith("- [x] Open the pull request — Pull request #100")


def test_a_model_without_a_plan_on_a_structured_request_gets_the_rules_plan(settings, world):
    tools, forge, _ = world
    model = ScriptedChatModel(
        [
            turn(call("validate_project_name_and_type", {"name": "payments-api"}, "v")),
            turn(*generators(), call("open_pull_request", {"summary": "Four files."}, "p")),
            turn(text="Opened the pull request."),
        ]
    )

    session = run(settings, world, new_session(), model)

    assert "**plan:** the rules planner's (the model wrote none)" in session.rendered_todo
    assert [t.id for t in session.todo.tasks] == [f"t{n}" for n in range(1, 10)]
    assert [t.status for t in session.todo.tasks] == ["done"] * 7 + ["waiting_approval"] * 2
    assert tools.calls["validate_project_name_and_type"] == 1  # the plan did not repeat it
    (pull,) = forge.pulls.values()
    assert "Four files." in pull.body and len(forge.commits) == 1
    assert session.status == "waiting"  # namespace and deploy wait for `/idp apply`


def test_a_model_that_never_publishes_gets_its_files_published_once(settings, world):
    _, forge, store = world
    plan = [{"id": n, "title": name, "tool": name} for n, (name, _) in enumerate(GENERATORS)]
    plan = [{**p, "id": f"g{p['id']}"} for p in plan]
    model = ScriptedChatModel(
        [
            turn(call("write_todo", {"tasks": plan}, "w")),
            turn(*generators()),
            turn(text="The files are ready."),
        ]
    )

    session = run(settings, world, new_session(request=False), model)

    assert forge.count("create_pull_request") == 1 and len(forge.commits) == 1
    assert lines(session)[-1].startswith("- [x] Open the pull request")
    assert ticked(session) == lines(session)
    again = run(settings, world, store.get(session.id), model)  # a redelivered job
    assert forge.count("commit_files") == 1 and again.pr_number == session.pr_number


class NotesArgs(BaseModel):
    text: str


class Notes(BaseModel):
    files: dict[str, str]
    summary: str


NOTES = ToolSpec(
    "write_notes",
    "Write the service's notes file",
    NotesArgs,
    Notes,
    lambda args, ctx: Notes(files={"NOTES.md": args.text}, summary="Notes"),
)


def test_files_changed_after_the_pull_request_are_committed_to_the_same_one(settings, world):
    tools, forge, store = world
    model = ScriptedChatModel(
        [
            turn(call("write_notes", {"text": "v1"}, "n1")),
            turn(call("open_pull_request", {"summary": "First cut."}, "p")),
            turn(call("write_notes", {"text": "v2"}, "n2")),
            turn(text="Rewrote the notes."),
        ]
    )
    agent = Agent(settings, ToolRegistry([*tools.specs(), NOTES]), forge, store, chat_model=model)

    session = asyncio.run(agent.run(new_session(request=False)))

    (pull,) = forge.pulls.values()
    assert [c["files"]["NOTES.md"] for c in forge.commits] == ["v1", "v2"]
    assert "First cut." in pull.body and pull.head_sha == forge.commits[-1]["sha"]
    assert session.head_sha == forge.commits[-1]["sha"]
    assert ticked(session) == lines(session)


def test_a_model_that_stops_after_one_tool_leaves_the_rest_of_the_plan_to_the_app(settings, world):
    tools, forge, _ = world
    model = ScriptedChatModel(
        [
            turn(call("validate_project_name_and_type", {"name": "payments-api"}, "v")),
            turn(text="The name is valid."),
        ]
    )

    session = run(settings, world, new_session(), model)

    assert tools.calls["validate_project_name_and_type"] == 1
    assert all(tools.calls[name] == 1 for name, _ in GENERATORS)
    assert len(forge.pulls) == 1 and len(forge.commits) == 1
    assert [t.status for t in session.todo.tasks] == ["done"] * 7 + ["waiting_approval"] * 2
    assert "The model stopped with 6 task(s) of the plan left; IDP Copilot carried them out." in (
        session.rendered_todo
    )
    assert tools.calls["deploy_to_staging"] == 0 and session.status == "waiting"


def test_a_model_that_only_talks_on_a_structured_request_still_gets_it_done(settings, world):
    _, forge, _ = world
    model = ScriptedChatModel([turn(text="I would start by validating the name.")])

    session = run(settings, world, new_session(), model)

    assert len(forge.pulls) == 1
    assert len(ticked(session)) == 7 and session.status == "waiting"


def test_free_text_that_the_model_only_answers_publishes_nothing(settings, world):
    _, forge, _ = world
    model = ScriptedChatModel([turn(text="Which language should it be?")])

    session = run(settings, world, new_session(request=False, text="a service"), model)

    assert not forge.pulls and session.todo.tasks == [] and session.status == "done"
