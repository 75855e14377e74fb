"""Every language × type renders a full service that passes every validator, and the rendered
objects follow the hardening rules and work together."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from app.domain.service import ServiceRequest
from tools.render import all_combinations, render_docs, render_k8s, render_service, write_files
from tools.render_common import slo_bucket
from tools.render_workflow import ACTION_PINS
from tools.validate import VALIDATORS, ValidationReport, validate_files

COMBINATIONS = all_combinations()
SHA_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Rendered:
    req: ServiceRequest
    files: dict[str, str]
    report: ValidationReport
    parsed: dict[str, list] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return f"services/{self.req.name}"

    def docs(self, path: str) -> list[dict]:
        if path not in self.parsed:
            self.parsed[path] = [d for d in yaml.safe_load_all(self.files[path]) if d]
        return self.parsed[path]

    def objects(self, kind: str) -> list[dict]:
        return [
            doc
            for path in self.files
            if path.endswith(".yaml") and "/.github/" not in f"/{path}"
            for doc in self.docs(path)
            if isinstance(doc, dict) and doc.get("kind") == kind
        ]

    def one(self, kind: str) -> dict:
        (obj,) = self.objects(kind)
        return obj

    @property
    def pod_spec(self) -> dict:
        return self.one("Deployment")["spec"]["template"]["spec"]

    @property
    def pod_labels(self) -> dict:
        return self.one("Deployment")["spec"]["template"]["metadata"]["labels"]

    @property
    def workflow_text(self) -> str:
        return self.files[f".github/workflows/{self.req.name}.yml"]


@pytest.fixture(scope="module", params=COMBINATIONS, ids=lambda r: r.name)
def svc(request) -> Rendered:
    """One rendered and validated service per combination, shared by the tests below."""
    files = render_service(request.param)
    return Rendered(request.param, files, validate_files(files))


def test_every_combination_passes_every_validator_with_nothing_skipped(svc):
    assert svc.report.ok, svc.report.failure_summary(limit=20)
    assert [run.validator for run in svc.report.runs] == [name for name, _ in VALIDATORS]
    assert all(run.files_checked > 0 for run in svc.report.runs), svc.report.as_markdown_table()


def test_hpa_owns_the_replica_count(svc):
    hpa = svc.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == svc.one("Deployment")["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] == svc.req.replicas
    assert hpa["spec"]["maxReplicas"] == svc.req.max_replicas
    assert "replicas" not in svc.one("Deployment")["spec"]


def test_selectors_match_the_pod_labels(svc):
    labels = svc.pod_labels
    assert labels["app.kubernetes.io/managed-by"] == "idp-copilot"
    assert labels["app.kubernetes.io/part-of"] == svc.req.team
    selectors = [svc.one("Deployment")["spec"]["selector"]["matchLabels"]]
    selectors += [p["spec"]["podSelector"]["matchLabels"] for p in svc.objects("NetworkPolicy")]
    selectors += [p["spec"]["selector"]["matchLabels"] for p in svc.objects("PodDisruptionBudget")]
    selectors += [s["spec"]["selector"] for s in svc.objects("Service")]
    selectors += [m["spec"]["selector"]["matchLabels"] for m in svc.objects("PodMonitor")]
    assert len(selectors) >= 3
    for selector in selectors:
        assert selector and selector.items() <= labels.items()
    for monitor in svc.objects("ServiceMonitor"):
        assert monitor["spec"]["selector"]["matchLabels"].items() <= (
            svc.one("Service")["metadata"]["labels"].items()
        )


def test_probes_and_service_ports_point_at_declared_container_ports(svc):
    (container,) = svc.pod_spec["containers"]
    declared = {p["name"] for p in container["ports"]}
    assert {p["containerPort"] for p in container["ports"]} == {svc.req.port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in container:
            assert container[probe]["httpGet"]["port"] in declared
    for service in svc.objects("Service"):
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= declared


def test_every_container_is_hardened(svc):
    pod = svc.pod_spec
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] >= 10000
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"] == {
        "requests": {"cpu": svc.req.cpu_request, "memory": svc.req.memory_request},
        "limits": {"cpu": svc.req.cpu_limit, "memory": svc.req.memory_limit},
    }
    image, tag = container["image"].rsplit(":", 1)
    assert image == f"ghcr.io/your-org/{svc.req.name}" and tag not in ("", "latest")
    assert container["imagePullPolicy"] == "Always"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {v["name"] for v in pod["volumes"] if "emptyDir" in v} == {"tmp"}
    assert svc.one("ServiceAccount")["automountServiceAccountToken"] is False
    assert ":latest" not in "".join(svc.files.values())


def test_more_than_one_replica_spreads_pods_and_gets_a_disruption_budget(svc):
    spread = svc.pod_spec["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    assert svc.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_traffic_objects_depend_on_the_service_type(svc):
    kinds = {kind: len(svc.objects(kind)) for kind in ("Service", "Ingress", "ServiceMonitor")}
    expected = {
        "api": {"Service": 1, "Ingress": 0, "ServiceMonitor": 1},
        "web": {"Service": 1, "Ingress": 1, "ServiceMonitor": 1},
        "worker": {"Service": 0, "Ingress": 0, "ServiceMonitor": 0},
    }[svc.req.type]
    assert kinds == expected
    if svc.req.type == "worker":
        assert svc.one("PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    if svc.req.type == "web":
        rule = svc.one("Ingress")["spec"]["rules"][0]
        assert rule["host"] == f"{svc.req.name}.example.com"


def test_network_policy_denies_by_default_and_allows_only_what_is_needed(svc):
    deny, allow = svc.objects("NetworkPolicy")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    assert allow["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": "http"}]
    assert {p["port"] for p in allow["spec"]["egress"][0]["ports"]} == {53}


def test_overlays_set_namespace_image_tag_and_replica_range(svc):
    image = svc.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    for env, minimum in (("staging", 1), ("production", svc.req.replicas)):
        (overlay,) = svc.docs(f"{svc.root}/k8s/overlays/{env}/kustomization.yaml")
        assert overlay["namespace"] == f"{svc.req.team}-{env}"
        assert overlay["resources"] == ["../../base"]
        if env == "production":
            name, tag = image.split(":")
            assert overlay["images"] == [{"name": name, "newTag": tag}]
        else:  # the deploy sets the tag CI pushed for the deployed commit
            assert "images" not in overlay
        ops = yaml.safe_load(overlay["patches"][0]["patch"])
        assert {"op": "replace", "path": "/spec/minReplicas", "value": minimum} in ops


def test_workflow_is_least_privilege_pinned_and_path_filtered(svc):
    wf = yaml.safe_load(svc.workflow_text)
    assert wf["permissions"] == {}
    assert wf["concurrency"]["group"]
    for event in ("push", "pull_request"):
        assert wf["on"][event]["paths"] == [
            f"{svc.root}/**",
            f".github/workflows/{svc.req.name}.yml",
        ]
    writers = [name for name, job in wf["jobs"].items() if "write" in job["permissions"].values()]
    assert writers == ["image"]
    assert wf["jobs"]["image"]["permissions"] == {"contents": "read", "packages": "write"}
    steps = [step for job in wf["jobs"].values() for step in job["steps"]]
    for step in steps:
        if "uses" in step:
            action, sha = step["uses"].split("@")
            assert SHA_RE.match(sha) and ACTION_PINS[action][0] == sha
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
    for line in svc.workflow_text.splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_dockerfile_is_multi_stage_non_root_and_pinned(svc):
    text = svc.files[f"{svc.root}/Dockerfile"]
    images = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(images) >= 2
    for image in images:
        name, _, tag = image.partition(":")
        assert re.search(r"\d+\.\d+", tag) and "latest" not in tag, image
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] == "10001:10001"
    assert "HEALTHCHECK" in text and f"EXPOSE {svc.req.port}" in text


def test_alerts_and_dashboard_follow_the_objectives(svc):
    rule = svc.one("PrometheusRule")
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]
    burn = [a for a in alerts if a["alert"].endswith("ErrorBudgetBurn")]
    assert {a["labels"]["severity"] for a in burn} == {"page", "ticket"}
    assert any("> 0.0144" in a["expr"] for a in burn)  # 14.4 × (1 - 99.9%)
    (latency,) = [a for a in alerts if a["alert"].endswith("LatencyHigh")]
    assert latency["expr"].endswith("> 0.3")
    dashboard = json.loads(svc.files[f"{svc.root}/observability/dashboard.json"])
    assert dashboard["uid"] == svc.req.name and len(dashboard["panels"]) == 6


def test_catalog_entry_names_the_owning_team(svc):
    (entity,) = svc.docs(f"{svc.root}/catalog-info.yaml")
    assert entity["apiVersion"] == "backstage.io/v1alpha1" and entity["kind"] == "Component"
    assert entity["spec"] == {"type": "service", "lifecycle": "experimental", "owner": "platform"}


def test_custom_objectives_reach_the_alerts_and_the_app_histogram():
    req = ServiceRequest(name="checkout", language="go", availability_slo=99.5, latency_p99_ms=250)
    files = render_service(req)
    assert slo_bucket(req) == "0.25"
    rules = files["services/checkout/observability/prometheusrule.yaml"]
    assert "> 0.072" in rules  # 14.4 × 0.5%
    assert ") > 0.25" in rules
    assert '"0.25"' in files["services/checkout/main.go"]


def test_a_single_replica_gets_no_spread_and_no_disruption_budget():
    files = render_k8s(ServiceRequest(name="solo", language="node", replicas=1, max_replicas=3))
    assert "services/solo/k8s/base/pdb.yaml" not in files
    deployment = yaml.safe_load(files["services/solo/k8s/base/deployment.yaml"])
    assert "topologySpreadConstraints" not in deployment["spec"]["template"]["spec"]
    base = yaml.safe_load(files["services/solo/k8s/base/kustomization.yaml"])
    assert "pdb.yaml" not in base["resources"]
    assert validate_files(files).ok


def test_base_path_placeholders_move_the_service_and_its_path_filters():
    req = ServiceRequest(name="ledger", language="java", team="payments")
    files = render_service(req, "apps/{team}/{name}")
    assert "apps/payments/ledger/k8s/base/deployment.yaml" in files
    assert "apps/payments/ledger/Dockerfile" in files
    workflow = yaml.safe_load(files[".github/workflows/ledger.yml"])
    assert workflow["on"]["push"]["paths"][0] == "apps/payments/ledger/**"
    assert workflow["defaults"]["run"]["working-directory"] == "apps/payments/ledger"
    assert validate_files(files).ok


@pytest.mark.parametrize(
    ("base_path", "problem"),
    [("../outside/{name}", "stay inside"), ("/abs/{name}", "stay inside"), ("a b", "may hold")],
)
def test_a_base_path_outside_the_repository_is_refused(base_path, problem):
    with pytest.raises(ValueError, match=problem):
        render_service(ServiceRequest(name="x", language="go"), base_path)


@pytest.mark.parametrize(
    ("field", "value", "fix"),
    [
        ("liveness_path", '/health"; rm -rf /', "e.g. '/healthz'"),
        ("memory_limit", "lots", "e.g. '256Mi'"),
        ("ingress_host", "Not A Host", "e.g. 'shop.example.com'"),
    ],
)
def test_values_that_would_break_a_file_are_refused_with_the_fix(field, value, fix):
    req = ServiceRequest(name="shop", language="python", **{field: value})
    with pytest.raises(ValueError, match=re.escape(fix)):
        render_service(req)


def test_rendering_is_pure_and_user_text_stays_inert_in_markdown():
    req = ServiceRequest(
        name="notes", language="node", type="web", description="Ping @everyone <script>"
    )
    assert render_service(req) == render_service(req)
    readme = render_docs(req)["services/notes/README.md"]
    assert "@everyone" not in readme and "<script>" not in readme
    assert "&#64;everyone" in readme


LONGEST = {
    "name": "n" + "-x" * 31,
    "team": "t" + "-y" * 31,
    "liveness_path": "/" + "live/" * 40,
    "readiness_path": "/" + "ready/" * 33,
}


def test_the_longest_names_and_paths_still_give_valid_objects():
    req = ServiceRequest(language="go", type="web", **LONGEST)
    assert len(req.name) == len(req.team) == 63
    files = render_service(req)
    report = validate_files(files)
    assert report.ok, report.failure_summary()
    root = f"services/{req.name}"
    for env in ("staging", "production"):
        overlay = yaml.safe_load(files[f"{root}/k8s/overlays/{env}/kustomization.yaml"])
        assert len(overlay["namespace"]) <= 63 and overlay["namespace"].endswith(f"-{env}")
    assert len(json.loads(files[f"{root}/observability/dashboard.json"])["uid"]) == 40


@pytest.mark.parametrize(
    "request_fields",
    [{"type": "api"}, {"type": "worker"}, {"type": "web"}, {"type": "web", **LONGEST}],
    ids=["api", "worker", "web", "longest-names"],
)
def test_the_generated_python_app_passes_its_own_lint_and_tests(tmp_path: Path, request_fields):
    """What the generated workflow runs first, run here on the rendered files."""
    req = ServiceRequest(**{"name": "py-app", "language": "python", **request_fields})
    write_files(render_service(req), tmp_path)
    service = tmp_path / "services" / req.name
    ruff = Path(sys.executable).parent / "ruff"
    for command in ([ruff, "check", "."], [ruff, "format", "--check", "."]):
        subprocess.run([str(c) for c in command], cwd=service, check=True, capture_output=True)
    result = subprocess.run(
        [sys.executable, "-m", "unittest", "discover", "-s", "tests", "-t", "."],
        cwd=service,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stderr
