"""The tool registry: names in any spelling, validation errors as observations, timeouts,
sync and async tools, schema export, and plugins from the `idp_copilot.tools` group."""

from __future__ import annotations

import asyncio
import logging
import threading
from importlib.metadata import EntryPoint

import pytest
from pydantic import BaseModel, Field

from tools import registry as registry_module
from tools.registry import ToolRegistry, default_registry, normalize_name
from tools.spec import ToolContext, ToolError, ToolSpec


class EchoArgs(BaseModel):
    name: str = Field(description="service name")
    replicas: int = Field(2, ge=1)


class EchoResult(BaseModel):
    text: str
    thread: int = 0


async def echo(args: EchoArgs, ctx: ToolContext) -> EchoResult:
    return EchoResult(text=f"{args.name} x{args.replicas}")


def echo_sync(args: EchoArgs, ctx: ToolContext) -> dict:
    return {"text": args.name, "thread": threading.get_ident()}


ECHO = ToolSpec("generate_k8s_manifests", "Render manifests", EchoArgs, EchoResult, echo)
ECHO.aliases = ["k8s-manifests", "Make Manifests"]
PLUGIN_SPEC = ToolSpec("plugin_single", "from a plugin", EchoArgs, EchoResult, echo)
PLUGIN_LIST = [
    ToolSpec("plugin_list_a", "a", EchoArgs, EchoResult, echo),
    ToolSpec("plugin_list_b", "b", EchoArgs, EchoResult, echo),
]
NOT_A_SPEC = {"name": "oops"}


def plugin_factory() -> list[ToolSpec]:
    return [ToolSpec("plugin_from_factory", "factory", EchoArgs, EchoResult, echo)]


def call(reg: ToolRegistry, name: str, args: dict | None, settings, approved: bool = False):
    return asyncio.run(reg.call(name, args, ToolContext(settings=settings, approved=approved)))


def test_names_and_aliases_match_in_any_spelling():
    reg = ToolRegistry([ECHO])
    for spelling in (
        "generate_k8s_manifests",
        "Generate-K8s-Manifests",
        "generate k8s manifests",
        "K8S_MANIFESTS",
        "make_manifests",
        "make-manifests",
    ):
        assert reg.get(spelling) is ECHO
    assert normalize_name("  Setup CI--CD ") == "setup_ci_cd"


def test_unknown_tool_names_the_closest_matches():
    reg = ToolRegistry([ECHO])
    with pytest.raises(ToolError) as err:
        reg.get("generate_k8s_manifest")
    assert "no tool named `generate_k8s_manifest`" in str(err.value)
    assert "Did you mean `generate_k8s_manifests`?" in str(err.value)


def test_a_name_taken_by_another_tool_is_refused():
    reg = ToolRegistry([ECHO])
    clash = ToolSpec("k8s_manifests", "other", EchoArgs, EchoResult, echo)
    with pytest.raises(ValueError, match="taken by 'generate_k8s_manifests'"):
        reg.register(clash)


def test_a_repo_allow_list_narrows_the_tools():
    reg = ToolRegistry([ECHO, PLUGIN_SPEC, *PLUGIN_LIST])
    names = [s.name for s in reg.specs(allow=["K8s-Manifests", "plugin_list_b", "nope"])]
    assert names == ["generate_k8s_manifests", "plugin_list_b"]
    assert len(reg.specs()) == 4


def test_async_tool_result_is_validated_and_dumped(settings):
    result = call(ToolRegistry([ECHO]), "k8s manifests", {"name": "pay", "replicas": 3}, settings)
    assert result.ok and result.error is None
    assert result.output == {"text": "pay x3", "thread": 0}
    assert result.tool == "generate_k8s_manifests"


def test_sync_tool_runs_in_a_worker_thread(settings):
    spec = ToolSpec("sync_echo", "sync", EchoArgs, EchoResult, echo_sync)
    assert spec.is_async is False
    result = call(ToolRegistry([spec]), "sync_echo", {"name": "pay"}, settings)
    assert result.ok
    assert result.output["thread"] != threading.get_ident()


def test_bad_arguments_come_back_as_an_observation_not_an_exception(settings):
    result = call(ToolRegistry([ECHO]), "generate_k8s_manifests", {"replicas": 0}, settings)
    assert not result.ok
    assert "Invalid arguments for `generate_k8s_manifests`" in result.error
    assert "`name`: Field required" in result.error
    assert "`replicas`: Input should be greater than or equal to 1" in result.error
    assert "match its schema" in result.error


def test_missing_arguments_count_as_an_empty_object(settings):
    result = call(ToolRegistry([ECHO]), "generate_k8s_manifests", None, settings)
    assert not result.ok and "`name`: Field required" in result.error


def test_unknown_tool_call_is_an_error_result(settings):
    result = call(ToolRegistry([ECHO]), "deploy_everything", {}, settings)
    assert not result.ok and "no tool named `deploy_everything`" in result.error


def test_a_slow_tool_times_out_with_a_sentence(settings):
    async def never(args, ctx):
        await asyncio.Event().wait()

    spec = ToolSpec("stuck", "never returns", EchoArgs, EchoResult, never, timeout=0.05)
    result = call(ToolRegistry([spec]), "stuck", {"name": "x"}, settings)
    assert not result.ok
    assert result.error == "`stuck` timed out after 0.05s"


def test_a_timeout_inside_the_tool_is_not_reported_as_the_tools_timeout(settings):
    async def inner_timeout(args, ctx):
        raise TimeoutError("upstream")

    spec = ToolSpec("inner", "x", EchoArgs, EchoResult, inner_timeout, timeout=30)
    result = call(ToolRegistry([spec]), "inner", {"name": "x"}, settings)
    assert result.error == "`inner` failed: a call inside it timed out"


def test_tool_errors_and_crashes_become_error_results_with_secrets_redacted(settings):
    secret = settings.secret_values()[0]

    async def refuses(args, ctx):
        raise ToolError("port 80 is reserved; use 8080")

    async def crashes(args, ctx):
        raise RuntimeError(f"connection to https://x:{secret}@host failed")

    reg = ToolRegistry(
        [
            ToolSpec("refuses", "x", EchoArgs, EchoResult, refuses),
            ToolSpec("crashes", "x", EchoArgs, EchoResult, crashes),
        ]
    )
    assert call(reg, "refuses", {"name": "a"}, settings).error == "port 80 is reserved; use 8080"
    crashed = call(reg, "crashes", {"name": "a"}, settings)
    assert crashed.error.startswith("`crashes` failed: RuntimeError: connection to https://x:")
    assert secret not in crashed.error and "[redacted]" in crashed.error


def test_output_that_breaks_the_schema_is_an_error(settings):
    async def wrong(args, ctx):
        return {"txt": "typo"}

    spec = ToolSpec("wrong", "x", EchoArgs, EchoResult, wrong)
    result = call(ToolRegistry([spec]), "wrong", {"name": "a"}, settings)
    assert not result.ok
    assert "returned output that breaks its schema" in result.error and "`text`" in result.error


def test_process_level_exceptions_are_not_swallowed(settings):
    class WorkerKilled(BaseException):
        pass

    async def killed(args, ctx):
        raise WorkerKilled()

    spec = ToolSpec("killed", "x", EchoArgs, EchoResult, killed)
    with pytest.raises(WorkerKilled):
        call(ToolRegistry([spec]), "killed", {"name": "a"}, settings)


def test_approval_gated_tool_is_refused_without_approval(settings):
    ran = []

    async def deploy(args, ctx):
        ran.append(args.name)
        return EchoResult(text="deployed")

    spec = ToolSpec("deploy_to_staging", "x", EchoArgs, EchoResult, deploy)
    spec.requires_approval = True
    reg = ToolRegistry([spec])
    refused = call(reg, "deploy_to_staging", {"name": "a"}, settings)
    assert not refused.ok and "`/idp apply`" in refused.error and ran == []
    assert call(reg, "deploy_to_staging", {"name": "a"}, settings, approved=True).ok
    assert ran == ["a"]


def test_openai_and_anthropic_exports_carry_the_derived_schema():
    reg = ToolRegistry([ECHO])
    (openai_tool,) = reg.export_openai()
    assert openai_tool["type"] == "function"
    function = openai_tool["function"]
    assert function["name"] == "generate_k8s_manifests"
    assert function["description"] == "Render manifests"
    assert function["parameters"]["type"] == "object"
    assert function["parameters"]["required"] == ["name"]
    assert function["parameters"]["properties"]["replicas"]["minimum"] == 1
    (anthropic_tool,) = reg.export_anthropic()
    assert set(anthropic_tool) == {"name", "description", "input_schema"}
    assert anthropic_tool["input_schema"] == function["parameters"]


def test_describe_lists_schemas_flags_and_capabilities():
    good = ToolSpec("probe", "x", EchoArgs, EchoResult, echo, side_effect="external")
    good.capabilities_provider = lambda: {"clusters": ["staging"]}
    good.requires_approval = True
    broken = ToolSpec("broken_probe", "x", EchoArgs, EchoResult, echo)

    def fails():
        raise OSError("no kubeconfig")

    broken.capabilities_provider = fails
    described = {d["name"]: d for d in ToolRegistry([good, broken]).describe()}
    assert described["probe"]["capabilities"] == {"clusters": ["staging"]}
    assert described["probe"]["side_effect"] == "external"
    assert described["probe"]["requires_approval"] is True
    assert described["probe"]["input_schema"]["required"] == ["name"]
    assert described["probe"]["output_schema"]["required"] == ["text"]
    assert described["broken_probe"]["capabilities"] == {"error": "OSError: no kubeconfig"}


def test_plugins_load_from_entry_points_and_broken_ones_are_skipped(monkeypatch, settings, caplog):
    group = registry_module.ENTRY_POINT_GROUP
    module = __name__
    points = [
        EntryPoint("single", f"{module}:PLUGIN_SPEC", group),
        EntryPoint("listed", f"{module}:PLUGIN_LIST", group),
        EntryPoint("factory", f"{module}:plugin_factory", group),
        EntryPoint("missing", "tests.no_such_plugin_module:TOOLS", group),
        EntryPoint("wrong_type", f"{module}:NOT_A_SPEC", group),
        EntryPoint("clash", f"{module}:PLUGIN_SPEC_CLASH", group),
    ]
    seen_groups = []

    def fake_entry_points(group):
        seen_groups.append(group)
        return points

    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points)
    with caplog.at_level(logging.ERROR, logger="tools.registry"):
        reg = default_registry(settings)
    assert seen_groups == ["idp_copilot.tools"]
    for name in ("plugin_single", "plugin_list_a", "plugin_list_b", "plugin_from_factory"):
        assert name in reg
    assert "open_pull_request" in reg  # the built-ins are there too
    assert "plugin_single_clash" not in reg
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "'missing'" in messages and "ModuleNotFoundError" in messages
    assert "'wrong_type'" in messages and "expected ToolSpec objects" in messages
    assert "plugin_single_clash" in messages and "is taken by" in messages


PLUGIN_SPEC_CLASH = ToolSpec(
    "plugin_single_clash", "same alias", EchoArgs, EchoResult, echo, aliases=["plugin single"]
)
