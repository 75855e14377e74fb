"""Cluster tools against a stand-in Kubernetes API server on loopback.

The stub speaks the parts of the API the tools use: server-side apply PATCHes, API discovery
for one CRD group, `Status` bodies for errors, and NamespaceLifecycle's 404 for objects in a
namespace that does not exist. A kubeconfig in tmp_path points the real client at it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from pydantic import ValidationError

from app.domain.service import ServiceRequest
from app.domain.session import Session
from app.github.forge import RepoRef
from tests.kube_standin import ApiServer, status
from tools.builtin.cluster import DRY_RUN_NOTE, TOOLS, create_k8s_namespace, deploy_to_staging
from tools.builtin.cluster_io import DeployInput, NamespaceInput
from tools.spec import ToolContext, ToolError, to_anthropic_tool, to_openai_tool

TOKEN = "stub-cluster-token"
REPO = RepoRef("acme", "payments")
# The operator's rule for acme/payments (tools/staging.py), whatever the service is called.
NS = "acme-payments-bf264d5186-staging"
MANAGER = "idp-copilot/acme/payments"
BASE = "services/payments-api/k8s/base"
LABELS = {"app.kubernetes.io/name": "payments-api", "app.kubernetes.io/instance": "payments-api"}


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    authorization: str | None
    body: dict[str, Any] | None


@dataclass
class FakeApiServer:
    """Records every request; `ApiServer` (tests/kube_standin.py) answers it as
    kube-apiserver does, unless `scripted` holds an answer for the method and path."""

    server: ApiServer = field(default_factory=ApiServer)
    scripted: dict[tuple[str, str], tuple[int, dict]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    url: str = ""

    @property
    def namespaces(self) -> set[str]:
        return self.server.namespaces

    def handle(self, call: Call) -> tuple[int, dict]:
        self.calls.append(call)
        if (call.method, call.path) in self.scripted:
            return self.scripted[(call.method, call.path)]
        return self.server.handle(call.method, call.path, call.query, call.content_type, call.body)


@pytest.fixture
def api():
    server_state = FakeApiServer()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            call = Call(
                method=self.command,
                path=url.path,
                query=dict(parse_qsl(url.query)),
                content_type=self.headers.get("Content-Type"),
                authorization=self.headers.get("Authorization"),
                body=json.loads(raw) if raw else None,
            )
            code, body = server_state.handle(call)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server_state
    server.shutdown()
    server.server_close()


def write_kubeconfig(tmp_path, server_url: str):
    path = tmp_path / f"kubeconfig-{len(list(tmp_path.glob('kubeconfig-*')))}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "stub", "cluster": {"server": server_url}}],
                "users": [{"name": "idp", "user": {"token": TOKEN}}],
                "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "idp"}}],
                "current-context": "stub",
            }
        )
    )
    return path


@pytest.fixture
def make_ctx(settings, tmp_path, api):
    def make(*, approved: bool = False, files: dict[str, str] | None = None, **kw) -> ToolContext:
        kubeconfig = write_kubeconfig(tmp_path, kw.pop("server", api.url))
        update = {"kubeconfig": kubeconfig, "staging_rollout_poll": 0.0, **kw.pop("settings", {})}
        configured = settings.model_copy(update=update)
        kw.setdefault("repo", REPO)
        if "session" not in kw:
            kw["session"] = Session(id="acme/payments#7", repo=REPO.full_name, number=7)
            kw["session"].head_sha = "3f2a1c9d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
        return ToolContext(settings=configured, approved=approved, files=files or {}, **kw)

    return make


def obj(api_version: str, kind: str, name: str = "payments-api", **spec: Any) -> dict:
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    out["metadata"] = {"name": name, "labels": dict(LABELS)}
    out.update(spec)
    return out


def base_files() -> dict[str, str]:
    """A small k8s/base: files in alphabetical order that differs from apply order."""
    pod = {
        "metadata": {"labels": dict(LABELS)},
        "spec": {
            "serviceAccountName": "payments-api",
            "containers": [{"name": "app", "image": "ghcr.io/acme/payments-api:3f2a1c9"}],
        },
    }
    deployment = obj(
        "apps/v1",
        "Deployment",
        spec={"selector": {"matchLabels": dict(LABELS)}, "template": pod},
    )
    hpa = obj(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        spec={
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "payments-api",
            },
            "minReplicas": 2,
            "maxReplicas": 6,
        },
    )
    docs = {
        "deployment.yaml": [deployment],
        "hpa.yaml": [hpa],
        "ingress.yaml": [obj("networking.k8s.io/v1", "Ingress", spec={"rules": []})],
        "networkpolicy.yaml": [
            obj("networking.k8s.io/v1", "NetworkPolicy", "default-deny", spec={"podSelector": {}}),
            obj(
                "networking.k8s.io/v1",
                "NetworkPolicy",
                spec={"podSelector": {"matchLabels": LABELS}},
            ),
        ],
        "pdb.yaml": [obj("policy/v1", "PodDisruptionBudget", spec={"minAvailable": 1})],
        "service.yaml": [obj("v1", "Service", spec={"ports": [{"port": 80}]})],
        "serviceaccount.yaml": [obj("v1", "ServiceAccount", automountServiceAccountToken=False)],
    }
    files = {f"{BASE}/{name}": yaml.safe_dump_all(items) for name, items in docs.items()}
    files[f"{BASE}/kustomization.yaml"] = yaml.safe_dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": sorted(docs),
        }
    )
    return files


EXPECTED_ORDER = [
    ("PATCH", f"/api/v1/namespaces/{NS}/serviceaccounts/payments-api"),
    ("PATCH", f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies/default-deny"),
    ("PATCH", f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies/payments-api"),
    ("PATCH", f"/api/v1/namespaces/{NS}/services/payments-api"),
    ("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/payments-api"),
    ("PATCH", f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/payments-api"),
    ("PATCH", f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/payments-api"),
    ("PATCH", f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/payments-api"),
]


def run(coro):
    return asyncio.run(coro)


# --- create_k8s_namespace ------------------------------------------------------------------


def test_unapproved_namespace_creation_is_a_server_side_dry_run(api, make_ctx):
    out = run(create_k8s_namespace(NamespaceInput(name="payments-api"), make_ctx()))

    (call,) = api.calls
    assert (call.method, call.path) == ("PATCH", f"/api/v1/namespaces/{NS}")
    assert call.query == {"fieldManager": MANAGER, "dryRun": "All"}
    assert call.content_type == "application/apply-patch+yaml"
    assert call.authorization == f"Bearer {TOKEN}"
    assert call.body["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert out.dry_run is True
    assert out.summary.startswith(DRY_RUN_NOTE)
    assert api.namespaces == set()


def test_approved_namespace_creation_applies_for_real_without_forcing(api, make_ctx):
    out = run(
        create_k8s_namespace(
            NamespaceInput(name="payments-api", team="payments"), make_ctx(approved=True)
        )
    )

    (call,) = api.calls
    assert call.query == {"fieldManager": MANAGER}
    assert call.body == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NS, "labels": out.labels},
    }
    assert out.labels["team"] == "payments" and out.labels["environment"] == "staging"
    assert out.dry_run is False and "Dry run" not in out.summary
    assert api.namespaces == {NS}


def test_namespace_team_label_defaults_to_the_session_request_team(api, make_ctx):
    session = Session(
        id="acme/platform#7",
        repo="acme/platform",
        number=7,
        request=ServiceRequest(name="payments-api", language="go", team="payments"),
    )

    run(create_k8s_namespace(NamespaceInput(name="payments-api"), make_ctx(session=session)))

    assert api.calls[0].body["metadata"]["labels"]["team"] == "payments"


def test_an_invalid_namespace_name_is_refused_with_a_suggestion():
    with pytest.raises(ValidationError, match="try 'payments-api'"):
        NamespaceInput(name="Payments_API")


def test_a_forbidden_namespace_becomes_a_readable_tool_error(api, make_ctx):
    api.scripted[("PATCH", f"/api/v1/namespaces/{NS}")] = (
        403,
        status(
            403,
            "Forbidden",
            'namespaces "payments-api-staging" is forbidden: User "system:serviceaccount:idp:'
            'idp-copilot" cannot patch resource "namespaces" in API group "" at the cluster scope',
        ),
    )

    with pytest.raises(ToolError) as err:
        run(create_k8s_namespace(NamespaceInput(name="payments-api"), make_ctx(approved=True)))

    message = str(err.value)
    assert "failed with 403" in message
    assert 'cannot patch resource "namespaces"' in message
    assert "RBAC" in message
    assert "Traceback" not in message and TOKEN not in message


def test_an_unreachable_api_server_says_where_it_looked(make_ctx):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    server = f"http://127.0.0.1:{closed_port}"

    with pytest.raises(ToolError) as err:
        run(create_k8s_namespace(NamespaceInput(name="payments-api"), make_ctx(server=server)))

    assert f"cannot reach the Kubernetes API at {server} (connection refused)" in str(err.value)
    assert "KUBECONFIG" in str(err.value)


def test_a_missing_kubeconfig_file_names_the_setting(settings, tmp_path):
    ctx = ToolContext(
        settings=settings.model_copy(update={"kubeconfig": tmp_path / "nope"}), repo=REPO
    )

    with pytest.raises(ToolError, match="KUBECONFIG points at .*nope"):
        run(create_k8s_namespace(NamespaceInput(name="payments-api"), ctx))


# --- deploy_to_staging -----------------------------------------------------------------------


def test_unapproved_deploy_dry_runs_every_object_in_dependency_order(api, make_ctx):
    api.namespaces.add(NS)

    out = run(deploy_to_staging(DeployInput(service="payments-api"), make_ctx(files=base_files())))

    assert [(c.method, c.path) for c in api.calls] == EXPECTED_ORDER
    for call in api.calls:  # never forced: a conflict must surface
        assert call.query == {"fieldManager": MANAGER, "dryRun": "All"}
        assert call.content_type == "application/apply-patch+yaml"
        assert call.body["metadata"]["namespace"] == NS
    assert out.dry_run is True
    assert out.summary.startswith(DRY_RUN_NOTE)
    assert {o.outcome for o in out.objects} == {"accepted by dry run"}
    assert "8 of 8 objects" in out.summary


def test_approved_deploy_applies_without_dry_run(api, make_ctx):
    api.namespaces.add(NS)

    out = run(
        deploy_to_staging(
            DeployInput(service="payments-api"), make_ctx(approved=True, files=base_files())
        )
    )

    patches = [c for c in api.calls if c.method == "PATCH"]
    assert [(c.method, c.path) for c in patches] == EXPECTED_ORDER
    assert all(c.query == {"fieldManager": MANAGER} for c in patches)
    assert out.dry_run is False
    assert out.summary.startswith("Rolled out payments-api: 1 of 1 replicas")
    assert f"8 objects applied to {NS}" in out.summary
    assert [o.kind for o in out.objects][:2] == ["ServiceAccount", "NetworkPolicy"]


def test_a_dry_run_before_the_namespace_exists_reports_objects_waiting(api, make_ctx):
    out = run(deploy_to_staging(DeployInput(service="payments-api"), make_ctx(files=base_files())))

    assert len(api.calls) == len(EXPECTED_ORDER)
    assert {o.outcome for o in out.objects} == {"waiting for namespace"}
    assert out.summary.startswith(DRY_RUN_NOTE)
    assert f"namespace {NS} does not exist yet" in out.summary


def test_an_approved_deploy_into_a_missing_namespace_says_to_create_it(api, make_ctx):
    with pytest.raises(ToolError) as err:
        run(
            deploy_to_staging(
                DeployInput(service="payments-api"), make_ctx(approved=True, files=base_files())
            )
        )

    assert len(api.calls) == 1
    assert f'namespaces "{NS}" not found' in str(err.value)
    assert "create_k8s_namespace" in str(err.value)


def test_an_invalid_object_stops_the_deploy_with_the_servers_reason(api, make_ctx):
    api.namespaces.add(NS)
    deployment_path = EXPECTED_ORDER[4][1]
    api.scripted[("PATCH", deployment_path)] = (
        422,
        status(
            422,
            "Invalid",
            'Deployment.apps "payments-api" is invalid: spec.template.spec.containers[0].image: '
            "Required value",
        ),
    )

    with pytest.raises(ToolError) as err:
        run(
            deploy_to_staging(
                DeployInput(service="payments-api"), make_ctx(approved=True, files=base_files())
            )
        )

    assert [c.path for c in api.calls] == [p for _, p in EXPECTED_ORDER[:5]]
    message = str(err.value)
    assert message.startswith("Deployment payments-api: Kubernetes API PATCH")
    assert "containers[0].image: Required value" in message
    assert "4 objects before it went through" in message


ALL_KINDS = {"staging_kinds": "ServiceMonitor.monitoring.coreos.com,Rollout.argoproj.io"}


def test_a_custom_resource_the_operator_allows_is_found_through_api_discovery(api, make_ctx):
    api.namespaces.add(NS)
    monitor = obj("monitoring.coreos.com/v1", "ServiceMonitor", spec={"endpoints": []})
    files = {f"{BASE}/servicemonitor.yaml": yaml.safe_dump(monitor)}

    out = run(
        deploy_to_staging(
            DeployInput(service="payments-api"), make_ctx(files=files, settings=ALL_KINDS)
        )
    )

    assert [(c.method, c.path) for c in api.calls] == [
        ("GET", "/apis/monitoring.coreos.com/v1"),
        ("PATCH", f"/apis/monitoring.coreos.com/v1/namespaces/{NS}/servicemonitors/payments-api"),
    ]
    assert out.objects[0].kind == "ServiceMonitor"


def test_a_kind_the_cluster_does_not_serve_is_named(api, make_ctx):
    api.namespaces.add(NS)
    rollout = obj("argoproj.io/v1alpha1", "Rollout")

    with pytest.raises(ToolError, match="does not serve Rollout in argoproj.io/v1alpha1"):
        run(
            deploy_to_staging(
                DeployInput(service="payments-api"),
                make_ctx(
                    files={f"{BASE}/rollout.yaml": yaml.safe_dump(rollout)}, settings=ALL_KINDS
                ),
            )
        )


def test_cluster_scoped_objects_and_missing_manifests_are_refused(api, make_ctx):
    role = yaml.safe_dump(obj("rbac.authorization.k8s.io/v1", "ClusterRole"))
    with pytest.raises(ToolError, match="ClusterRole payments-api is cluster-scoped"):
        run(
            deploy_to_staging(
                DeployInput(service="payments-api"), make_ctx(files={f"{BASE}/role.yaml": role})
            )
        )
    with pytest.raises(ToolError, match="no manifests under services/payments-api/k8s/base/"):
        run(deploy_to_staging(DeployInput(service="payments-api"), make_ctx()))
    assert api.calls == []


class RepoFiles:
    """The one Forge call the deploy makes after a merge: reading files of the default branch."""

    def __init__(self, files: dict[str, str]):
        self.files = files
        self.reads: list[str] = []

    async def read_file(self, repo: RepoRef, path: str, ref: str | None = None) -> str | None:
        self.reads.append(path)
        return self.files.get(path)


def test_after_a_merge_the_manifests_come_from_the_repo_via_kustomization(api, make_ctx):
    api.namespaces.add(NS)
    forge = RepoFiles(base_files())
    ctx = make_ctx(forge=forge, repo=RepoRef("acme", "payments"))

    out = run(deploy_to_staging(DeployInput(service="payments-api"), ctx))

    assert forge.reads[0] == f"{BASE}/kustomization.yaml"
    assert [(c.method, c.path) for c in api.calls] == EXPECTED_ORDER
    assert len(out.objects) == 8


def test_deploy_input_rejects_path_traversal_and_bad_names():
    with pytest.raises(ValidationError, match="without '..'"):
        DeployInput(service="payments-api", manifests_dir="../../etc")
    with pytest.raises(ValidationError, match="try 'payments-api'"):
        DeployInput(service="Payments API")


def test_cluster_tools_wait_for_approval_and_export_their_schemas():
    by_name = {spec.name: spec for spec in TOOLS}

    assert set(by_name) == {"create_k8s_namespace", "deploy_to_staging"}
    for spec in TOOLS:
        assert spec.side_effect == "external" and spec.requires_approval
        assert to_openai_tool(spec)["function"]["parameters"] == spec.input_schema
        assert to_anthropic_tool(spec)["input_schema"] == spec.input_schema
    assert by_name["deploy_to_staging"].input_schema["required"] == ["service"]


def test_a_hand_edit_blocks_the_next_deploy_with_a_409_naming_the_editor(api, make_ctx):
    """Server-side apply without force over the real client: a field `kubectl edit` changed
    (operation Update) is reported, never taken back
    (https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts)."""
    api.namespaces.add(NS)
    run(
        deploy_to_staging(
            DeployInput(service="payments-api"), make_ctx(approved=True, files=base_files())
        )
    )
    path = f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/payments-api"
    api.server.update(path, {(".spec", ".minAvailable"): 0}, manager="kubectl-edit")

    with pytest.raises(ToolError) as err:
        run(
            deploy_to_staging(
                DeployInput(service="payments-api"), make_ctx(approved=True, files=base_files())
            )
        )

    message = str(err.value)
    assert message.startswith("PodDisruptionBudget payments-api: 409 Conflict:")
    assert '"kubectl-edit" using policy/v1 already owns .spec.minAvailable' in message
    assert "force" not in api.calls[-1].query
    assert api.server.objects[path].obj["spec"]["minAvailable"] == 0
