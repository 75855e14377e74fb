"""The plan comment the README shows, made by the App's own code on a fixed fixture: the
stand-in API server holds a namespace, an older Deployment and an unchanged Service; the
plan runs through tools/cluster_plan.py and the todo renders as the App posts it.
tests/test_readme_plan.py keeps the README equal to it; `python -m tests.readme_plan`
rewrites the README's copy.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from app.domain.approval import approval_digest
from app.domain.plan import ClusterPlan
from app.domain.todo import Task, Todo, render_todo
from tests.kube_standin import ApiServer, FakeCluster
from tools.builtin.cluster import namespace_labels
from tools.cluster_plan import namespace_plan, objects_plan

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- plan-example:start -->", "<!-- plan-example:end -->"
NAMESPACE = "acme-payments-bf264d5186-staging"
MANAGER = "idp-copilot/acme/payments"
IMAGE = "ghcr.io/acme/payments-api"
LINK = "[IDP Copilot plan](https://github.com/acme/payments/pull/12/checks?check_run_id=4242)"


def _deployment(tag: str, replicas: int) -> dict:
    labels = {"app.kubernetes.io/name": "payments-api"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "payments-api", "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "payments-api", "image": f"{IMAGE}:{tag}"}]},
            },
        },
    }


def _objects() -> list[dict]:
    meta = {"namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": "payments-api"}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "payments-api", **meta}}  # fmt: skip
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "payments-api", **meta},
        "spec": {"selector": meta["labels"], "ports": [{"name": "http", "port": 8080}]},
    }
    return [account, service, _deployment("sha-5313512fee88", 2)]


def plans() -> list[tuple[str, ClusterPlan]]:
    """The two waiting steps' plans against a cluster where an older release runs."""
    cluster = FakeCluster(ApiServer(namespaces={NAMESPACE}))
    labels = namespace_labels("staging", "checkout")
    cluster.ensure_namespace(NAMESPACE, labels, dry_run=False, field_manager=MANAGER)
    _, service, _ = _objects()
    for obj in (service, _deployment("sha-0a1b2c3d4e5f", 1)):
        cluster.apply(obj, dry_run=False, field_manager=MANAGER)
    return [
        (
            "Create the Kubernetes namespace",
            namespace_plan(cluster, "create_k8s_namespace", NAMESPACE, labels, MANAGER),
        ),
        (
            "Deploy to staging",
            objects_plan(cluster, "deploy_to_staging", _objects(), NAMESPACE, MANAGER),
        ),
    ]


def example_comment() -> str:
    """The todo comment of acme/payments#7 waiting for `/idp apply`, as the App renders it."""
    (ns_title, ns_plan), (deploy_title, deploy_plan) = plans()
    target = f"namespace `{NAMESPACE}`"
    deploy_args = {"service": "payments-api", "manifests_dir": "services/payments-api/k8s/base"}
    files = {f"services/payments-api/k8s/base/{n}.yaml": "…" for n in ("deployment", "service")}
    done = [
        ("t1", "Validate the service name and type"),
        ("t3", "Generate Kubernetes manifests"),
        ("t7", "Open the pull request"),
    ]
    tasks = [Task(id=i, title=t, status="done") for i, t in done]
    tasks += [
        Task(id="t8", title=ns_title, tool="create_k8s_namespace", status="waiting_approval",
             detail="waiting for `/idp apply` from a maintainer", target=target, plan=ns_plan,
             digest=approval_digest("create_k8s_namespace", {"environment": "staging"}, {},
                                    target, ns_plan.digest)),
        Task(id="t9", title=deploy_title, tool="deploy_to_staging", status="waiting_approval",
             detail="waiting for `/idp apply` from a maintainer", target=target, applies=2,
             plan=deploy_plan,
             digest=approval_digest("deploy_to_staging", deploy_args, files, target,
                                    deploy_plan.digest)),
    ]  # fmt: skip
    todo = Todo(
        title="New service `payments-api`",
        meta={"language": "go", "type": "api", "pull request": "[#12](https://github.com/acme/payments/pull/12)"},
        tasks=tasks,
        notes=["🔒 Steps marked 🔒 are waiting for `/idp apply` from a maintainer."],
        plan_link=LINK,
    )  # fmt: skip
    return render_todo(todo, "acme/payments#7")


def snippet() -> str:
    return f"{START}\n```markdown\n{example_comment()}```\n{END}"


def in_readme(text: str) -> str | None:
    found = re.search(re.escape(START) + r".*?" + re.escape(END), text, re.S)
    return found.group(0) if found else None


def main() -> int:
    text = README.read_text()
    current = in_readme(text)
    if current is None:
        print(f"README.md has no {START} … {END} block", file=sys.stderr)
        return 1
    README.write_text(text.replace(current, snippet()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
