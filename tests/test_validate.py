"""Each validator catches what it is there for, names the file and says what is wrong."""

from __future__ import annotations

import json

import pytest
import yaml

from app.domain.service import ServiceRequest
from tools import validate_zizmor
from tools.render import render_service
from tools.validate import ValidationReport, validate_files

ROOT = "services/orders/"
DEPLOYMENT = ROOT + "k8s/base/deployment.yaml"
WORKFLOW = ".github/workflows/orders.yml"


@pytest.fixture(scope="module")
def good() -> dict[str, str]:
    return render_service(ServiceRequest(name="orders", language="go", type="web"))


def edited(files: dict[str, str], path: str, change) -> dict[str, str]:
    """A copy of `files` with the YAML at `path` changed by `change(doc)`."""
    docs = list(yaml.safe_load_all(files[path]))
    change(docs[0])
    return {**files, path: yaml.safe_dump_all(docs, sort_keys=False)}


def errors_of(report: ValidationReport, validator: str) -> list[str]:
    return [
        f"{f.path}: {f.message}"
        for f in report.findings
        if f.validator == validator and f.severity == "error"
    ]


def test_the_rendered_service_passes(good):
    report = validate_files(good)
    assert report.ok, report.failure_summary()
    assert report.model_dump()["ok"] is True


def test_an_unknown_deployment_field_is_caught_by_the_strict_kubernetes_schema(good):
    def add_field(doc):
        doc["spec"]["template"]["spec"]["containers"][0]["bogusField"] = True

    report = validate_files(edited(good, DEPLOYMENT, add_field))
    assert not report.ok
    (error,) = errors_of(report, "kubernetes")
    assert error.startswith(DEPLOYMENT + ": Deployment orders: spec.template.spec.containers.0")
    assert "'bogusField' was unexpected" in error


def test_a_kind_kubernetes_does_not_know_is_reported(good):
    files = {
        **good,
        ROOT + "k8s/base/extra.yaml": "apiVersion: v1\nkind: Gadget\nmetadata:\n  name: x\n",
    }
    (error,) = errors_of(validate_files(files), "kubernetes")
    assert "Couldn't find schema for kind Gadget" in error


def test_replicas_on_a_deployment_the_hpa_scales_are_refused(good):
    report = validate_files(edited(good, DEPLOYMENT, lambda d: d["spec"].update(replicas=3)))
    (error,) = errors_of(report, "consistency")
    assert "Deployment orders: remove spec.replicas" in error


def test_a_selector_that_matches_no_pod_is_caught(good):
    path = ROOT + "k8s/base/service.yaml"
    report = validate_files(edited(good, path, lambda d: d["spec"].update(selector={"app": "x"})))
    assert any(
        "Service orders: selector {'app': 'x'} matches no pod" in e
        for e in errors_of(report, "consistency")
    )


def test_a_probe_on_an_undeclared_port_is_caught(good):
    def probe_elsewhere(doc):
        doc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = 9999

    (error,) = errors_of(validate_files(edited(good, DEPLOYMENT, probe_elsewhere)), "consistency")
    assert "livenessProbe uses port 9999, which the container does not declare" in error


def test_a_workflow_key_the_schema_does_not_know_is_caught(good):
    def misspell(doc):
        doc["jobs"]["lint"]["runs_on"] = doc["jobs"]["lint"].pop("runs-on")

    report = validate_files(edited(good, WORKFLOW, misspell))
    errors = errors_of(report, "workflow-schema")
    assert errors and all(e.startswith(WORKFLOW + ": jobs.lint") for e in errors)


def test_an_unquoted_on_key_is_read_the_way_github_reads_it(good):
    text = good[WORKFLOW].replace("'on':", "on:")
    assert "\non:\n" in text
    assert errors_of(validate_files({**good, WORKFLOW: text}), "workflow-schema") == []


def test_zizmor_fails_a_workflow_that_splices_untrusted_input_into_a_script(good):
    def inject(doc):
        doc["jobs"]["lint"]["steps"].append(
            {"name": "Greet", "run": 'echo "${{ github.event.pull_request.title }}"'}
        )

    report = validate_files(edited(good, WORKFLOW, inject))
    errors = errors_of(report, "zizmor")
    assert any(e.startswith(WORKFLOW + ": template-injection") for e in errors), errors
    assert "| zizmor | 1 | ❌" in report.as_markdown_table()


def test_a_missing_zizmor_is_an_error_not_a_silent_pass(good, monkeypatch):
    monkeypatch.setattr(validate_zizmor, "zizmor_binary", lambda: None)
    (error,) = errors_of(validate_files(good), "zizmor")
    assert "zizmor is not installed" in error


def test_a_yaml_syntax_error_is_reported_and_the_other_files_still_checked(good):
    files = {**good, ROOT + "k8s/base/hpa.yaml": "kind: [unclosed\n"}
    report = validate_files(files)
    (error,) = errors_of(report, "yaml")
    assert error.startswith(ROOT + "k8s/base/hpa.yaml: not valid YAML")
    assert next(r for r in report.runs if r.validator == "kubernetes").files_checked >= 5


def test_a_broken_dashboard_is_reported(good):
    path = ROOT + "observability/dashboard.json"
    (error,) = errors_of(validate_files({**good, path: '{"panels": ['}), "json")
    assert error.startswith(path + ": not valid JSON")


def test_prometheus_rules_are_checked_against_the_operator_schema(good):
    path = ROOT + "observability/prometheusrule.yaml"

    def break_rule(doc):
        rule = doc["spec"]["groups"][1]["rules"][0]
        rule["for"] = "ten minutes"
        rule["record"] = "also:a_record"

    errors = errors_of(validate_files(edited(good, path, break_rule)), "custom-objects")
    assert any("spec.groups.1.rules.0.for: 'ten minutes' does not match" in e for e in errors)
    assert any("spec.groups.1.rules.0" in e and "valid under each of" in e for e in errors)


def test_a_kustomization_resource_missing_from_the_change_is_caught(good):
    path = ROOT + "k8s/base/kustomization.yaml"
    files = {k: v for k, v in good.items() if not k.endswith("/hpa.yaml")}
    errors = errors_of(validate_files(files), "custom-objects")
    assert errors == [
        f"{path}: resource 'hpa.yaml' is neither a file nor a kustomization in the change"
    ]


def test_a_catalog_entry_without_owner_is_caught(good):
    path = ROOT + "catalog-info.yaml"
    errors = errors_of(
        validate_files(edited(good, path, lambda d: d["spec"].pop("owner"))), "custom-objects"
    )
    assert errors == [f"{path}: Component orders: spec: 'owner' is a required property"]


def test_the_table_has_one_row_per_validator_and_the_summary_lists_errors(good):
    files = {**good, ROOT + "observability/dashboard.json": "nope"}
    report = validate_files(files)
    table = report.as_markdown_table().splitlines()
    assert table[0] == "| validator | files checked | result |"
    assert [row.split("|")[1].strip() for row in table[2:]] == [
        "yaml",
        "json",
        "kubernetes",
        "custom-objects",
        "consistency",
        "workflow-schema",
        "zizmor",
    ]
    assert "| json | 1 | ❌ 1 error |" in table
    assert "| kubernetes | 7 | ✅ pass |" in table
    assert report.failure_summary().startswith("json: services/orders/observability/dashboard")
    assert json.loads(report.model_dump_json())["ok"] is False


def test_a_workflow_zizmor_cannot_parse_fails_instead_of_being_skipped(good):
    report = validate_files({**good, ".github/workflows/broken.yml": "on: push\njobs: 3\n"})
    errors = errors_of(report, "zizmor")
    assert len(errors) == 1 and "zizmor could not audit the workflows" in errors[0]
    assert "failed to load file://./.github/workflows/broken.yml as workflow" in errors[0]
