"""Validators every generated file passes before it is published, for the agent (a failure
marks the task failed with the validator's message) and for the PR body (the table).

`validate_files({path: text})` parses every YAML and JSON file; checks every Kubernetes object
with `kubernetes-validate` in strict mode, the Prometheus Operator, kustomize and Backstage
objects against the schemas in `tools/validate_schemas.py`, and that the objects work
together; checks workflows against the schemastore schema that check-jsonschema vendors and
with `zizmor --offline` (one subprocess for all workflows).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import PurePosixPath
from typing import Any, Literal

import jsonschema
import kubernetes_validate
import yaml
from pydantic import BaseModel, computed_field

from tools import validate_k8s
from tools.validate_consistency import check_consistency
from tools.validate_schemas import SCHEMAS
from tools.validate_zizmor import audit_early, run_zizmor

K8S_VERSION = kubernetes_validate.latest_version()
# libyaml's safe loader when PyYAML was built with it: same documents, several times faster.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# API groups that kubernetes-validate has no schema for; their objects go to SCHEMAS instead.
CUSTOM_GROUPS = ("monitoring.coreos.com/", "kustomize.config.k8s.io/", "backstage.io/")

Severity = Literal["error", "warning"]


class Finding(BaseModel):
    """One problem in one file, as the todo and the PR show it."""

    validator: str
    path: str
    message: str
    severity: Severity = "error"


class ValidatorRun(BaseModel):
    validator: str
    files_checked: int
    errors: int = 0
    warnings: int = 0


class ValidationReport(BaseModel):
    """All findings plus one row per validator; `ok` when no finding is an error."""

    findings: list[Finding] = []
    runs: list[ValidatorRun] = []
    seconds: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def as_markdown_table(self) -> str:
        """| validator | files checked | result | — for PR bodies and check runs."""
        rows = ["| validator | files checked | result |", "| --- | ---: | --- |"]
        for run in self.runs:
            if run.errors:
                result = f"❌ {run.errors} error{'s' if run.errors != 1 else ''}"
            elif run.files_checked == 0:
                result = "— nothing to check"
            else:
                result = "✅ pass"
            if run.warnings:
                result += f" ({run.warnings} warning{'s' if run.warnings != 1 else ''})"
            rows.append(f"| {run.validator} | {run.files_checked} | {result} |")
        return "\n".join(rows) + "\n"

    def failure_summary(self, limit: int = 5) -> str:
        """The first errors, one line each, for a failed task in the todo."""
        errors = self.errors()
        lines = [f"{f.validator}: {f.path}: {f.message}" for f in errors[:limit]]
        if len(errors) > limit:
            lines.append(f"… and {len(errors) - limit} more")
        return "\n".join(lines)


@dataclass
class Inputs:
    """The files, each YAML file parsed once (YAML errors recorded, not raised)."""

    files: dict[str, str]
    docs: dict[str, list[Any]] = field(default_factory=dict)
    yaml_errors: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for path in self.yaml_paths():
            try:
                docs = yaml.load_all(self.files[path], Loader=YAML_LOADER)  # noqa: S506 - safe loader
                self.docs[path] = [d for d in docs if d is not None]
            except yaml.YAMLError as exc:
                self.yaml_errors[path] = str(exc).replace("\n", " ")

    def yaml_paths(self) -> list[str]:
        return sorted(p for p in self.files if p.endswith((".yaml", ".yml")))

    def workflow_paths(self) -> list[str]:
        return [p for p in self.yaml_paths() if is_workflow(p)]

    def objects(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(path, object) for every document with an apiVersion and a kind."""
        for path, docs in self.docs.items():
            if is_workflow(path):
                continue
            for doc in docs:
                if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc:
                    yield path, doc


def is_workflow(path: str) -> bool:
    return PurePosixPath(path).parent.as_posix().endswith(".github/workflows")


def _describe(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name", "?") if isinstance(metadata, dict) else "?"
    return f"{obj.get('kind')} {name}"


def _schema_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def check_yaml(inputs: Inputs) -> tuple[int, list[Finding]]:
    return len(inputs.yaml_paths()), [
        Finding(validator="yaml", path=path, message=f"not valid YAML: {error}")
        for path, error in inputs.yaml_errors.items()
    ]


def check_json(inputs: Inputs) -> tuple[int, list[Finding]]:
    paths = sorted(p for p in inputs.files if p.endswith(".json"))
    findings = []
    for path in paths:
        try:
            json.loads(inputs.files[path])
        except json.JSONDecodeError as exc:
            findings.append(Finding(validator="json", path=path, message=f"not valid JSON: {exc}"))
    return len(paths), findings


def check_kubernetes(inputs: Inputs) -> tuple[int, list[Finding]]:
    """Strict schema validation against the newest Kubernetes the package bundles."""
    checked, findings = set(), []
    for path, obj in inputs.objects():
        if str(obj["apiVersion"]).startswith(CUSTOM_GROUPS):
            continue
        checked.add(path)
        try:
            validate_k8s.validate(obj, strict=True)  # the library's checks, schemas cached
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path) or "(top level)"
            message = f"{_describe(obj)}: {where}: {exc.message} (Kubernetes {exc.version})"
            findings.append(Finding(validator="kubernetes", path=path, message=message))
        except kubernetes_validate.SchemaNotFoundError as exc:
            findings.append(Finding(validator="kubernetes", path=path, message=exc.message))
        except Exception as exc:  # a malformed object (kind not a string, ...) is a finding
            message = f"{_describe(obj)}: could not be validated: {exc}"
            findings.append(Finding(validator="kubernetes", path=path, message=message))
    return len(checked), findings


def check_custom_objects(inputs: Inputs) -> tuple[int, list[Finding]]:
    """Prometheus Operator, kustomize and Backstage objects against SCHEMAS, and every
    kustomization's local resources present in the file set."""
    checked, findings = set(), []
    for path, obj in inputs.objects():
        if not str(obj["apiVersion"]).startswith(CUSTOM_GROUPS):
            continue
        checked.add(path)
        schema = SCHEMAS.get((str(obj["apiVersion"]), str(obj["kind"])))
        if schema is None:
            message = f"{_describe(obj)}: no schema for {obj['apiVersion']} {obj['kind']}"
            findings.append(Finding(validator="custom-objects", path=path, message=message))
            continue
        for error in jsonschema.Draft202012Validator(schema).iter_errors(obj):
            message = f"{_describe(obj)}: {_schema_path(error)}: {error.message}"
            findings.append(Finding(validator="custom-objects", path=path, message=message))
        if obj["kind"] == "Kustomization":
            findings += _missing_resources(inputs, path, obj)
    return len(checked), findings


def _missing_resources(inputs: Inputs, path: str, obj: dict[str, Any]) -> list[Finding]:
    base = PurePosixPath(path).parent
    findings = []
    for resource in obj.get("resources") or []:
        if not isinstance(resource, str) or "://" in resource or resource.startswith("github.com"):
            continue
        target = os.path.normpath(str(base / resource)).replace(os.sep, "/")
        present = target in inputs.files or any(
            f"{target}/{name}" in inputs.files
            for name in ("kustomization.yaml", "kustomization.yml", "Kustomization")
        )
        if not present:
            message = f"resource {resource!r} is neither a file nor a kustomization in the change"
            findings.append(Finding(validator="custom-objects", path=path, message=message))
    return findings


def check_objects_together(inputs: Inputs) -> tuple[int, list[Finding]]:
    objects = list(inputs.objects())
    problems = check_consistency(objects)
    paths = {path for path, _ in objects}
    return len(paths), [
        Finding(validator="consistency", path=path, message=message) for path, message in problems
    ]


@cache
def _workflow_validator() -> jsonschema.protocols.Validator:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "github-workflows.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def check_workflow_schema(inputs: Inputs) -> tuple[int, list[Finding]]:
    """The schemastore GitHub-workflow schema, as check-jsonschema vendors it."""
    findings = []
    paths = [p for p in inputs.workflow_paths() if p in inputs.docs]
    for path in paths:
        for doc in inputs.docs[path]:
            # YAML 1.1 reads an unquoted `on:` key as true; GitHub reads it as "on".
            if isinstance(doc, dict) and True in doc:
                doc = {("on" if key is True else key): value for key, value in doc.items()}
            for error in _workflow_validator().iter_errors(doc):
                message = f"{_schema_path(error)}: {error.message}"
                findings.append(Finding(validator="workflow-schema", path=path, message=message))
    return len(paths), findings


def check_zizmor(inputs: Inputs) -> tuple[int, list[Finding]]:
    """`zizmor --offline` on all workflows at once; medium and high findings fail."""
    paths = inputs.workflow_paths()
    if not paths:
        return 0, []
    results = run_zizmor({path: inputs.files[path] for path in paths})
    return len(paths), [
        Finding(
            validator="zizmor",
            path=path,
            message=message,
            severity="error" if failing else "warning",
        )
        for path, message, failing in results
    ]


def start_zizmor_early(files: dict[str, str]) -> None:
    """Start zizmor now on the workflows among `files` (those `validate_files(files)` would
    audit): validating the same files later takes its findings instead of running it."""
    paths = [p for p in sorted(files) if p.endswith((".yaml", ".yml")) and is_workflow(p)]
    if paths:
        audit_early({path: files[path] for path in paths})


VALIDATORS: list[tuple[str, Callable[[Inputs], tuple[int, list[Finding]]]]] = [
    ("yaml", check_yaml),
    ("json", check_json),
    ("kubernetes", check_kubernetes),
    ("custom-objects", check_custom_objects),
    ("consistency", check_objects_together),
    ("workflow-schema", check_workflow_schema),
    ("zizmor", check_zizmor),
]


def validate_files(files: dict[str, str]) -> ValidationReport:
    """Run every validator on `files` (path → text); never raises for bad content."""
    started = time.monotonic()
    inputs = Inputs(files)
    report = ValidationReport()
    for name, check in VALIDATORS:
        checked, findings = check(inputs)
        report.findings.extend(findings)
        report.runs.append(
            ValidatorRun(
                validator=name,
                files_checked=checked,
                errors=sum(f.severity == "error" for f in findings),
                warnings=sum(f.severity == "warning" for f in findings),
            )
        )
    report.seconds = round(time.monotonic() - started, 3)
    return report
