"""Tool plug-ins for real: the example package under examples/ (installed by `make test`)
reaches `idp-copilot tools list` and the agent; tools in the prototype's format register
with their JSON Schemas enforced; a plug-in that fails to import, has a broken schema, or
clashes with a built-in name is skipped with one log line and listed as not loaded."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pytest

from app.agent.loop import Agent
from app.agent.providers.base import ModelTurn, ToolCall, Usage
from app.agent.providers.scripted import ScriptedChatModel
from app.cli import main
from app.domain.session import Session
from app.state import SessionStore
from tests.fakes import FakeForge
from tools import registry as registry_module
from tools.registry import ToolRegistry, default_registry
from tools.spec import ToolContext

GROUP = registry_module.ENTRY_POINT_GROUP
HERE = __name__


def test_the_example_plugin_is_installed_in_the_entry_point_group():
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}

    assert found.get("cost") == "idp_example_tools:tools", (
        "examples/idp-example-tools is not installed: `make test` installs it "
        "(pip install -e examples/idp-example-tools)"
    )


def test_tools_list_shows_the_example_plugin_tool(capsys):
    assert main(["tools", "list"]) == 0

    out = capsys.readouterr().out
    assert "cost_estimate (aliases: estimate-cost, monthly cost) [none, from plugin:cost]" in out
    assert "open_pull_request" in out  # beside the built-ins


def test_an_agent_run_with_a_scripted_model_calls_the_plugin_tool(settings, redis_conn):
    plan = [{"id": "t1", "title": "Estimate the monthly cost", "tool": "cost_estimate"}]
    args = {"replicas": 3, "cpu_millicores": 500, "memory_mib": 1024}
    model = ScriptedChatModel(
        [
            turn(ToolCall(id="c1", name="write_todo", arguments={"tasks": plan})),
            turn(ToolCall(id="c2", name="Estimate-Cost", arguments=args)),
            turn(text="Three pods cost about $59 a month."),
        ]
    )
    session = Session(id="acme/shop#3", repo="acme/shop", number=3, request_text="what cost?")
    store = SessionStore(redis_conn, settings)
    agent = Agent(settings, default_registry(settings), FakeForge(), store, chat_model=model)

    done = asyncio.run(agent.run(session))

    assert "cost_estimate" in model.requests[0].tools
    (step,) = [s for s in done.steps if s.tool == "cost_estimate"]
    # 1.5 vCPU x 0.0445 x 730 + 3 GiB x 0.0049 x 730
    assert step.ok and step.output["monthly_usd"] == pytest.approx(59.46, abs=0.01)
    answer = next(m for m in done.messages if m.get("tool_call_id") == "c2")
    assert '"monthly_usd"' in answer["content"] and not answer["is_error"]
    assert [t.status for t in done.todo.tasks] == ["done"]


def turn(*calls: ToolCall, text: str | None = None) -> ModelTurn:
    return ModelTurn(
        text=text, tool_calls=list(calls), usage=Usage(input_tokens=5, output_tokens=5)
    )


# -- the prototype's format -----------------------------------------------------------------

SCALE_SCHEMA = {
    "type": "object",
    "properties": {
        "service": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 20},
    },
    "required": ["service", "replicas"],
    "additionalProperties": False,
}
SCALED_SCHEMA = {
    "type": "object",
    "properties": {"plan": {"type": "string"}},
    "required": ["plan"],
}


async def scale(service: str, replicas: int) -> dict[str, Any]:
    return {"plan": f"scale {service} to {replicas}"}


def count_words(text: str) -> dict[str, Any]:
    return {"words": len(text.split())}


def broken_output(service: str, replicas: int) -> dict[str, Any]:
    return {"not_plan": True}


PROTOTYPE_DICT = {
    "name": "scale_service",
    "description": "Plan a scale change",
    "input_schema": SCALE_SCHEMA,
    "output_schema": SCALED_SCHEMA,
    "func": scale,
    "is_async": True,
    "timeout": 5,
    "aliases": ["scale"],
}


@dataclass
class PrototypeToolSpec:
    """The prototype's own dataclass, as a plug-in written for it declares its tools."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    func: Any
    is_async: bool = True
    timeout: float | None = None
    aliases: list[str] | None = field(default_factory=list)


PROTOTYPE_SYNC = PrototypeToolSpec(
    "count_words",
    "Count words",
    {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    {"type": "object", "properties": {"words": {"type": "integer"}}},
    count_words,
    is_async=False,
)
PROTOTYPE_BAD_OUTPUT = {
    **PROTOTYPE_DICT,
    "name": "bad_output",
    "aliases": [],
    "func": broken_output,
}
PROTOTYPE_BAD_SCHEMA = {
    **PROTOTYPE_DICT,
    "name": "bad_schema",
    "aliases": [],
    "input_schema": {"type": "object", "properties": {"n": {"type": "nonsense"}}},
}
# The second tool is fine, but the first takes a built-in's name: the plug-in is all or nothing.
CLASHING = [
    {**PROTOTYPE_DICT, "name": "open_pull_request", "aliases": []},
    {**PROTOTYPE_DICT, "name": "innocent_bystander", "aliases": []},
]


@pytest.fixture
def plugins(monkeypatch):
    """Installs the given entry points (module:attribute of this file) instead of the real
    group; `EntryPoint.load()` imports them for real."""

    def install(**points: str) -> None:
        eps = [EntryPoint(name, value, GROUP) for name, value in points.items()]
        monkeypatch.setattr(registry_module, "entry_points", lambda group: eps)

    return install


def run_tool(reg: ToolRegistry, name: str, args: Any, settings):
    return asyncio.run(reg.call(name, args, ToolContext(settings=settings)))


def test_a_prototype_format_tool_registers_and_its_schema_is_enforced(plugins, settings):
    plugins(proto=f"{HERE}:PROTOTYPE_DICT", sync=f"{HERE}:PROTOTYPE_SYNC")
    reg = default_registry(settings)

    assert reg.not_loaded == []
    ok = run_tool(reg, "Scale", {"service": "payments-api", "replicas": 3}, settings)
    assert ok.ok and ok.output == {"plan": "scale payments-api to 3"}
    too_many = run_tool(reg, "scale_service", {"service": "payments-api", "replicas": 99}, settings)
    assert not too_many.ok
    assert "Invalid arguments for `scale_service`" in too_many.error
    assert "replicas: 99 is greater than the maximum of 20" in too_many.error
    extra = run_tool(reg, "scale_service", {"service": "a", "replicas": 1, "x": 1}, settings)
    assert "Additional properties are not allowed ('x' was unexpected)" in extra.error
    words = run_tool(reg, "count_words", {"text": "one two three"}, settings)
    assert words.ok and words.output == {"words": 3}


def which_thread() -> dict[str, Any]:
    return {"thread": threading.get_ident()}


# `is_async` left at the prototype's default (True) on a plain function
SYNC_BUT_DEFAULT = {
    "name": "which_thread",
    "description": "The thread it ran on",
    "input_schema": {"type": "object"},
    "output_schema": {"type": "object"},
    "func": which_thread,
}


def test_a_plain_prototype_function_never_runs_on_the_event_loop(plugins, settings):
    plugins(threads=f"{HERE}:SYNC_BUT_DEFAULT")

    result = run_tool(default_registry(settings), "which_thread", {}, settings)

    assert result.ok and result.output["thread"] != threading.get_ident()


def test_a_prototype_tool_exports_the_schema_its_author_wrote(plugins, settings):
    plugins(proto=f"{HERE}:PROTOTYPE_DICT")
    reg = default_registry(settings)

    described = {t["name"]: t for t in reg.describe()}["scale_service"]
    assert described["input_schema"] == SCALE_SCHEMA
    assert described["output_schema"] == SCALED_SCHEMA
    assert described["source"] == "plugin:proto" and described["timeout"] == 5.0
    (openai,) = [t for t in reg.export_openai() if t["function"]["name"] == "scale_service"]
    assert openai["function"]["parameters"] == SCALE_SCHEMA


def test_a_prototype_tool_whose_result_breaks_its_output_schema_fails_visibly(plugins, settings):
    plugins(bad=f"{HERE}:PROTOTYPE_BAD_OUTPUT")
    result = run_tool(
        default_registry(settings), "bad_output", {"service": "a", "replicas": 1}, settings
    )

    assert not result.ok
    assert "returned output that breaks its schema" in result.error
    assert "'plan' is a required property" in result.error


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("tests.no_such_plugin_module:TOOLS", "ModuleNotFoundError: No module named"),
        (f"{HERE}:PROTOTYPE_BAD_SCHEMA", "bad_schema: the input schema is invalid"),
        (f"{HERE}:CLASHING", "'open_pull_request' of 'open_pull_request' is taken by"),
        (f"{HERE}:SCALE_SCHEMA", "expected ToolSpec objects or prototype tools"),
    ],
    ids=["import-fails", "invalid-schema", "clashes-with-built-in", "not-a-tool"],
)
def test_a_broken_plugin_is_skipped_with_one_log_line_and_listed(
    plugins, settings, caplog, capsys, value, reason
):
    plugins(good=f"{HERE}:PROTOTYPE_SYNC", broken=value)
    with caplog.at_level(logging.ERROR, logger="tools.registry"):
        reg = default_registry(settings)

    assert "count_words" in reg and "open_pull_request" in reg  # the rest still loads
    assert "innocent_bystander" not in reg
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("tool plug-in 'broken' (") and "not loaded" in line and reason in line
    (skipped,) = reg.not_loaded
    assert skipped.plugin == "broken" and reason in skipped.reason
    # the built-in keeps its own implementation
    assert reg.get("open_pull_request").input_model.__name__ != "open_pull_request_Input"

    assert main(["tools", "list"]) == 0
    out = capsys.readouterr().out
    assert f"not loaded: plug-in broken ({value})" in out and reason in out
