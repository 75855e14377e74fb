"""The generating tools, called through the registry as the agent calls them: what they
accept, what they refuse (with the fix), and which files each returns."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.agent.planner import args_for
from app.config import Settings
from app.domain.service import ServiceRequest
from app.github.forge import RepoRef
from tests.payloads import GENERATORS as PARTS
from tools.builtin.generate import TOOLS
from tools.registry import ToolRegistry, ToolResult
from tools.render import render_service
from tools.render_k8s import StagingPlace
from tools.spec import ToolContext, to_anthropic_tool, to_openai_tool

PROTOTYPE_NAMES = {
    "validate_project_name_and_type",
    "list_templates",
    "apply_template",
    "generate_k8s_manifests",
    "setup_cicd_pipeline",
    "setup_observability",
    "generate_documentation",
}
REQUEST = {"name": "billing", "language": "node", "type": "api", "team": "payments"}


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return ToolRegistry(TOOLS)


def run(registry: ToolRegistry, name: str, args: dict, ctx: ToolContext | None = None):
    ctx = ctx or ToolContext(settings=Settings())
    return asyncio.run(registry.call(name, args, ctx))


def ok(result: ToolResult) -> dict:
    assert result.ok, result.error
    return result.output


def test_the_prototype_tools_are_there_pure_and_exportable(registry):
    names = {spec.name for spec in TOOLS}
    assert names >= PROTOTYPE_NAMES
    for spec in TOOLS:
        assert spec.side_effect == "none" and not spec.requires_approval
        openai, anthropic = to_openai_tool(spec), to_anthropic_tool(spec)
        assert json.loads(json.dumps(openai))["function"]["parameters"] == spec.input_schema
        assert anthropic["input_schema"] == spec.input_schema and anthropic["name"] == spec.name
    assert registry.get("create-ci-pipeline").name == "setup_cicd_pipeline"
    assert registry.get("Generate Manifests").name == "generate_k8s_manifests"


def test_a_name_is_normalized_and_type_and_language_synonyms_are_understood(registry):
    out = ok(
        run(
            registry,
            "validate_project_name_and_type",
            {"name": " Billing-API ", "type": "frontend", "language": "golang"},
        )
    )
    assert (out["name"], out["type"], out["language"], out["missing"]) == (
        "billing-api",
        "web",
        "go",
        [],
    )


def test_a_bad_name_is_refused_with_the_rule_and_a_suggestion(registry):
    result = run(registry, "validate_project_name_and_type", {"name": "Payments_API!"})
    assert not result.ok
    assert "lower-case letters, digits and '-'" in result.error
    assert "try 'payments-api'" in result.error


def test_an_unknown_language_lists_the_templates_and_a_missing_one_is_flagged(registry):
    result = run(registry, "validate_project_name_and_type", {"name": "x", "language": "rust"})
    assert "choose python, go, node, java" in result.error
    out = ok(run(registry, "validate_project_name_and_type", {"name": "x"}))
    assert out["language"] is None and out["missing"] == ["language"]


def test_list_templates_offers_every_language_and_type(registry):
    out = ok(run(registry, "list_templates", {}))
    pairs = {(t["language"], t["type"]) for t in out["templates"]}
    assert len(pairs) == 12 and ("java", "worker") in pairs


def test_apply_template_renders_the_whole_service_with_the_repository_owner_image(registry):
    ctx = ToolContext(settings=Settings(), repo=RepoRef("Acme-Corp", "platform"))
    out = ok(run(registry, "apply_template", REQUEST, ctx))
    # The staging overlay names the operator's namespace for this repository.
    staging = StagingPlace("acme-corp-platform-77e4826acb-staging")
    assert out["files"] == render_service(
        ServiceRequest(**REQUEST), image="ghcr.io/acme-corp/billing", staging=staging
    )
    assert (
        "image: ghcr.io/acme-corp/billing:0.1.0"
        in out["files"]["services/billing/k8s/base/deployment.yaml"]
    )
    assert ctx.files == out["files"]
    assert out["summary"] == (
        f"Service from template for `billing` (node api): {len(out['files'])} files"
    )


def test_the_part_tools_together_give_exactly_what_apply_template_gives(registry):
    parts = {name: ok(run(registry, name, REQUEST))["files"] for name in PARTS}
    assert all(p.startswith("services/billing/k8s/") for p in parts["generate_k8s_manifests"])
    assert set(parts["setup_cicd_pipeline"]) >= {
        ".github/workflows/billing.yml",
        "services/billing/Dockerfile",
        "services/billing/src/server.js",
        "services/billing/package.json",
    }
    assert set(parts["setup_observability"]) == {
        f"services/billing/observability/{f}"
        for f in (
            "servicemonitor.yaml",
            "prometheusrule.yaml",
            "dashboard.json",
            "kustomization.yaml",
        )
    }
    assert set(parts["generate_documentation"]) == {
        "services/billing/README.md",
        "services/billing/docs/runbook.md",
        "services/billing/catalog-info.yaml",
    }
    union = {path: text for files in parts.values() for path, text in files.items()}
    assert union == ok(run(registry, "apply_template", REQUEST))["files"]


def test_base_path_comes_from_the_arguments(registry):
    out = ok(run(registry, "generate_documentation", {**REQUEST, "base_path": "apps/{name}"}))
    assert set(out["files"]) == {
        "apps/billing/README.md",
        "apps/billing/docs/runbook.md",
        "apps/billing/catalog-info.yaml",
    }


def test_values_that_would_break_a_manifest_come_back_as_a_tool_error(registry):
    result = run(registry, "generate_k8s_manifests", {**REQUEST, "cpu_limit": "fast"})
    assert not result.ok
    assert "cpu_limit 'fast' is not a Kubernetes quantity, e.g. '250m'" in result.error
    result = run(registry, "setup_observability", {**REQUEST, "base_path": "../x"})
    assert "must be relative and stay inside the repository" in result.error


def test_an_invalid_service_name_is_an_argument_error_with_a_suggestion(registry):
    result = run(registry, "apply_template", {**REQUEST, "name": "Billing Service"})
    assert not result.ok and "try 'billing-service'" in result.error


def test_validate_generated_files_checks_the_workspace(registry):
    ctx = ToolContext(settings=Settings())
    ok(run(registry, "apply_template", REQUEST, ctx))
    out = ok(run(registry, "validate_generated_files", {}, ctx))
    assert out["ok"] and "| zizmor | 1 | ✅ pass |" in out["table"]
    ctx.files["services/billing/observability/dashboard.json"] = "{"
    result = run(registry, "validate_generated_files", {}, ctx)
    assert "json: services/billing/observability/dashboard.json: not valid JSON" in result.error
    empty = run(registry, "validate_generated_files", {}, ToolContext(settings=Settings()))
    assert "generate the service first" in empty.error


def test_the_rules_planner_arguments_fit_every_generating_tool(registry):
    req = ServiceRequest(**REQUEST)
    for name in PARTS:
        spec = registry.get(name)
        out = ok(run(registry, name, args_for(spec, req)))
        assert out["files"], name
