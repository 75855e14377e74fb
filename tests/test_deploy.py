"""What an operator deploys: the kustomize manifests under deploy/, docker-compose.yml, the
Dockerfile, the App manifest and the issue form. Each is checked by the validator its
consumer uses (Kubernetes' own schemas in strict mode, the compose-spec schema, the
issue-forms schema) and against the hardening rules the App's generated manifests follow."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from app.config import Settings
from app.grammar.commands import parse_issue_form
from app.web import WEBHOOK_PATH

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
OVERLAYS = sorted(p.parent for p in DEPLOY.glob("overlays/*/kustomization.yaml"))
K8S_VERSION = kubernetes_validate.latest_version()
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
# Custom resources Kubernetes' schemas do not cover: KEDA's (checked field by field below)
# and the Prometheus operator's.
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"}
# Secrets the operator creates (README: "Configure"); the manifests only reference them.
OPERATOR_SECRETS = {"idp-copilot", "idp-copilot-redis"}


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def _load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def _objects_in_files() -> list[tuple[str, dict[str, Any]]]:
    """Every Kubernetes object in deploy/, kustomization files aside, with its file."""
    objects = []
    for path in _yaml_files():
        if path.name == "kustomization.yaml":
            continue
        for doc in _load_all(path.read_text()):
            if isinstance(doc, dict) and "kind" in doc:
                objects.append((str(path.relative_to(ROOT)), doc))
    return objects


def _kustomize(overlay: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    done = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"kustomize build {overlay} failed:\n{done.stderr}"
    return _load_all(done.stdout)


def _name(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def _strict_problems(obj: dict[str, Any]) -> list[str]:
    """Kubernetes' own schema, strict (unknown fields fail). Custom resources (KEDA) have no
    schema there: their structure is checked in the tests below instead."""
    group = obj["apiVersion"].rpartition("/")[0]
    if "." in group and not group.endswith(".k8s.io"):
        assert obj["kind"] in CUSTOM_KINDS, (
            f"{_name(obj)}: a custom resource this suite does not know how to check"
        )
        return []
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        return [f"{_name(obj)} at {where or 'top'}: {exc.message[:300]}"]
    return []


def _hardening_problems(objects: list[dict[str, Any]]) -> list[str]:
    """The rules the App's generated manifests follow, applied to our own."""
    problems: list[str] = []
    autoscaled = {
        o["spec"]["scaleTargetRef"]["name"]
        for o in objects
        if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
    }
    for obj in (o for o in objects if o["kind"] in WORKLOAD_KINDS):
        name, pod = _name(obj), _pod_spec(obj)
        labels = obj["spec"]["template"]["metadata"]["labels"]
        selector = obj["spec"]["selector"]["matchLabels"]
        if any(labels.get(k) != v for k, v in selector.items()):
            problems.append(f"{name}: selector {selector} does not match pod labels {labels}")
        if obj["metadata"]["name"] in autoscaled and "replicas" in obj["spec"]:
            problems.append(f"{name}: sets replicas although an autoscaler owns them")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token")
        pod_sc = pod.get("securityContext", {})
        for c in pod["containers"]:
            where, sc = f"{name} container {c['name']}", c.get("securityContext", {})
            image = c["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if not tag or tag == "latest":
                problems.append(f"{where}: image {image} has no pinned tag")
            for kind in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(c.get("resources", {}).get(kind, {}))
                if missing:
                    problems.append(f"{where}: no {kind} for {sorted(missing)}")
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    problems.append(f"{where}: no {probe}")
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                problems.append(f"{where}: not runAsNonRoot")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allows privilege escalation")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: does not drop ALL capabilities")
            seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccomp profile is not RuntimeDefault")
    return problems


def _references_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Services, PDBs and autoscalers point at workloads that exist; secrets by reference."""
    problems: list[str] = []
    workloads = {o["metadata"]["name"]: o for o in objects if o["kind"] in WORKLOAD_KINDS}
    pod_labels = [o["spec"]["template"]["metadata"]["labels"] for o in workloads.values()]

    def selects_pods(selector: dict[str, str]) -> bool:
        return any(all(lbl.get(k) == v for k, v in selector.items()) for lbl in pod_labels)

    for obj in objects:
        kind, spec = obj["kind"], obj.get("spec", {})
        if kind == "Secret":
            problems.append(f"{_name(obj)}: a Secret in the repo; reference one instead")
        if kind == "Service" and not selects_pods(spec["selector"]):
            problems.append(f"{_name(obj)}: selector matches no pod")
        if kind == "PodDisruptionBudget" and not selects_pods(spec["selector"]["matchLabels"]):
            problems.append(f"{_name(obj)}: selector matches no pod")
        if kind in ("HorizontalPodAutoscaler", "ScaledObject"):
            target = spec["scaleTargetRef"]["name"]
            if target not in workloads:
                problems.append(f"{_name(obj)}: scales {target}, which is not defined")
    for obj in workloads.values():
        for c in _pod_spec(obj)["containers"]:
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] not in OPERATOR_SECRETS:
                    problems.append(f"{_name(obj)}: unknown Secret {ref['name']}")
                if "value" in env and re.search("SECRET|KEY|TOKEN|PASSWORD", env["name"]):
                    problems.append(f"{_name(obj)}: {env['name']} has a literal value")
    return problems


# -- deploy/ ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_in_deploy_parses(path):
    docs = _load_all(path.read_text())
    assert docs, f"{path} is empty"
    assert all(isinstance(doc, dict) and "kind" in doc for doc in docs)


def test_every_kubernetes_object_passes_strict_schema_validation():
    objects = [obj for _, obj in _objects_in_files()]
    assert {"Deployment", "Service", "Ingress", "PodDisruptionBudget"} <= {
        o["kind"] for o in objects
    }
    problems = [p for obj in objects for p in _strict_problems(obj)]
    assert problems == []


def test_a_misspelt_field_fails_strict_validation():
    """The strict check catches what the API server would silently drop."""
    _, web = next(
        (f, o) for f, o in _objects_in_files() if o["metadata"]["name"] == "idp-copilot-web"
    )
    broken = json.loads(json.dumps(web))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    assert _strict_problems(broken)


def test_workloads_follow_the_hardening_rules():
    objects = [obj for _, obj in _objects_in_files()]
    assert {o["metadata"]["name"] for o in objects if o["kind"] in WORKLOAD_KINDS} == {
        "idp-copilot-web",
        "idp-copilot-worker",
        "idp-copilot-redis",
    }
    assert _hardening_problems(objects) == []
    assert _references_problems(objects) == []


def test_the_hardening_check_reports_each_broken_rule():
    objects = [json.loads(json.dumps(obj)) for _, obj in _objects_in_files()]
    web = next(o for o in objects if _name(o) == "Deployment/idp-copilot-web")
    web["spec"]["replicas"] = 3
    container = _pod_spec(web)["containers"][0]
    container["image"] = "idp-copilot:latest"
    del container["resources"]["limits"]
    container["securityContext"]["capabilities"]["drop"] = ["NET_RAW"]
    problems = "\n".join(_hardening_problems(objects))
    assert "sets replicas although an autoscaler owns them" in problems
    assert "image idp-copilot:latest has no pinned tag" in problems
    assert "no limits for ['cpu', 'memory']" in problems
    assert "does not drop ALL capabilities" in problems


def test_web_probes_ask_healthz_for_liveness_and_readyz_for_readiness():
    web = next(o for _, o in _objects_in_files() if o["metadata"]["name"] == "idp-copilot-web")
    container = _pod_spec(web)["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == 3000
    assert "--port" in container["command"] and "3000" in container["command"]


def test_workers_scale_on_the_rq_queue_the_app_enqueues_to():
    objects = {_name(o): o for _, o in _objects_in_files()}
    scaled = objects["ScaledObject/idp-copilot-worker"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == f"rq:queue:{Settings().queue_name}"
    assert trigger["metadata"]["listName"] == "rq:queue:idp"
    auth = objects[f"TriggerAuthentication/{trigger['authenticationRef']['name']}"]
    assert {ref["name"] for ref in auth["spec"]["secretTargetRef"]} <= OPERATOR_SECRETS
    assert scaled["spec"]["minReplicaCount"] >= 1
    assert "replicas" not in objects["Deployment/idp-copilot-worker"]["spec"]


def _settings_variables() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(getattr(alias, "choices", [alias] if isinstance(alias, str) else []))
    return names


def test_every_variable_the_app_pods_get_is_one_settings_reads():
    """A misspelt variable would be ignored silently (Settings ignores unknown ones)."""
    known = _settings_variables()
    given: set[str] = set()
    for path in (DEPLOY / "base").glob("*.yaml"):
        for doc in _load_all(path.read_text()):
            if doc.get("kind") == "Kustomization":
                for generator in doc.get("configMapGenerator", []):
                    given.update(lit.split("=", 1)[0] for lit in generator.get("literals", []))
            elif doc.get("kind") in WORKLOAD_KINDS:
                for c in _pod_spec(doc)["containers"]:
                    given.update(env["name"] for env in c.get("env", []))
    assert {"REDIS_URL", "GITHUB_APP_ID", "IDP_QUEUE", "GITHUB_API_URL"} <= given
    assert given - known == set()


def test_the_ingress_exposes_the_webhook_path_but_not_metrics():
    ingress = next(o for _, o in _objects_in_files() if o["kind"] == "Ingress")
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert any(WEBHOOK_PATH.startswith(p) for p in paths)
    assert not any("/metrics".startswith(p) or "/healthz".startswith(p) for p in paths)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_each_overlay_builds_into_valid_hardened_manifests(overlay):
    objects = _kustomize(overlay)
    problems = [p for obj in objects for p in _strict_problems(obj)]
    problems += _hardening_problems(objects) + _references_problems(objects)
    assert problems == []
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    scaled = next(o for o in objects if o["kind"] == "ScaledObject")
    queue = config["data"]["IDP_QUEUE"]
    assert scaled["spec"]["triggers"][0]["metadata"]["listName"] == f"rq:queue:{queue}"
    for obj in objects:
        assert obj["metadata"].get("namespace", "idp-copilot") == "idp-copilot"
        if obj["kind"] in WORKLOAD_KINDS and obj["metadata"]["name"] != "idp-copilot-redis":
            image = _pod_spec(obj)["containers"][0]["image"]
            assert "/" in image, f"{overlay.name}: {_name(obj)} runs the unqualified {image}"
            env_from = _pod_spec(obj)["containers"][0]["envFrom"][0]["configMapRef"]["name"]
            assert env_from == config["metadata"]["name"]  # the hashed name, rewritten


def test_the_trial_overlay_brings_its_own_redis_and_production_does_not():
    kinds = {p.name: {_name(o) for o in _kustomize(p)} for p in OVERLAYS}
    assert "StatefulSet/idp-copilot-redis" in kinds["trial"]
    assert "StatefulSet/idp-copilot-redis" not in kinds["production"]


# -- docker-compose.yml and the Dockerfile ------------------------------------------------


def _compose_validator() -> jsonschema.protocols.Validator:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def test_docker_compose_file_follows_the_compose_spec():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    errors = [f"{list(e.path)}: {e.message}" for e in _compose_validator().iter_errors(compose)]
    assert errors == []
    assert set(compose["services"]) == {"redis", "web", "worker"}
    assert compose["services"]["worker"]["command"] == ["idp-copilot", "worker"]
    assert compose["services"]["web"]["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_compose_schema_rejects_an_unknown_service_key():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    compose["services"]["web"]["replica"] = 2
    assert list(_compose_validator().iter_errors(compose))


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck():
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines()]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) >= 2
    assert all(":" in ln.split()[1] and ":latest" not in ln for ln in froms)
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert any(ln.startswith("HEALTHCHECK ") and "/healthz" in " ".join(lines) for ln in lines)


# -- the App manifest and the issue form --------------------------------------------------


def test_github_app_manifest_has_the_keys_the_manifest_flow_needs():
    manifest = yaml.safe_load((ROOT / "github-app.yml").read_text())
    assert {"name", "url", "hook_attributes", "default_permissions", "default_events"} <= set(
        manifest
    )
    assert manifest["hook_attributes"]["url"].endswith(WEBHOOK_PATH)
    assert manifest["public"] is False
    assert {
        "issues",
        "issue_comment",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
    } <= set(manifest["default_events"])
    for permission in ("issues", "pull_requests", "contents", "checks"):
        assert manifest["default_permissions"][permission] == "write"
    # GitHub accepts a sign-in redirect only under a registered callback URL.
    from app.console.signin import CALLBACK_PATH

    assert any(url.endswith(CALLBACK_PATH) for url in manifest["callback_urls"])


def test_issue_form_validates_against_the_issue_forms_schema():
    from check_jsonschema.cli import main as check_jsonschema

    path = ROOT / ".github/ISSUE_TEMPLATE/new-service.yml"
    with pytest.raises(SystemExit) as done:
        check_jsonschema(["--builtin-schema", "vendor.github-issue-forms", str(path)])
    assert done.value.code == 0


def test_issue_form_headings_are_the_ones_the_parser_reads():
    """Render the form as GitHub does (`### Label`, a blank line, the answer) and parse it."""
    form = yaml.safe_load((ROOT / ".github/ISSUE_TEMPLATE/new-service.yml").read_text())
    answers = {
        "name": "payments-api",
        "language": "go",
        "type": "worker",
        "team": "payments",
        "port": "9090",
        "replicas": "3",
        "description": "Takes payments.",
    }
    body = "\n\n".join(
        f"### {item['attributes']['label']}\n\n{answers[item['id']]}"
        for item in form["body"]
        if item["type"] != "markdown"
    )
    request = parse_issue_form(body)
    assert (request.name, request.language, request.type) == ("payments-api", "go", "worker")
    assert (request.team, request.port, request.replicas) == ("payments", 9090, 3)
    assert "idp:new-service" in form["labels"]
