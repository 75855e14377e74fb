"""The operator's staging rules (tools/staging.py): namespaces from the repository, one field
manager per repository, the kinds, Ingress domains and kube contexts the operator allows."""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from app.config import Settings
from tools.cluster import ClusterError, KubernetesCluster
from tools.overlay import OverlayError, build
from tools.rollout import deployment_state
from tools.staging import StagingPolicy, StagingPolicyError, field_manager

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
OWNER = st.from_regex(r"[A-Za-z0-9](-?[A-Za-z0-9]){0,38}", fullmatch=True).filter(
    lambda s: len(s) <= 39
)
REPO = st.from_regex(r"[A-Za-z0-9._-]{1,100}", fullmatch=True)


def policy(settings, **update) -> StagingPolicy:
    return StagingPolicy.from_settings(settings.model_copy(update=update))


@given(owner=OWNER, repo=REPO)
def test_every_repository_gets_a_valid_namespace_and_field_manager(owner, repo):
    name = f"{owner}/{repo}"
    namespace = StagingPolicy.from_settings(Settings()).namespace_for(name)
    assert DNS_LABEL.match(namespace) and namespace.endswith("-staging")
    manager = field_manager(name)
    assert len(manager) <= 128 and manager.startswith("idp-copilot/")


def test_names_that_read_alike_still_get_different_namespaces(settings):
    rule = policy(settings)
    assert rule.namespace_for("acme/payments-api") != rule.namespace_for("acme-payments/api")
    assert rule.namespace_for("acme/my.repo") != rule.namespace_for("acme/my_repo")
    assert rule.namespace_for("Acme/Shop") == rule.namespace_for("acme/shop")  # GitHub ignores case
    long = rule.namespace_for("o" * 39 + "/" + "r" * 100)
    assert len(long) == 63


def test_the_prefix_and_the_operators_mapping_decide_the_namespace(settings):
    rule = policy(
        settings,
        staging_namespace_prefix="stg-",
        staging_namespaces="acme/shop=shop-staging, Acme/Web = web-staging",
    )
    assert rule.namespace_for("acme/shop") == "shop-staging"
    assert rule.namespace_for("acme/web") == "web-staging"
    assert rule.namespace_for("acme/other").startswith("stg-acme-other-")


def test_a_long_repository_name_gets_a_hashed_field_manager_within_128_characters():
    long = "o" * 39 + "/" + "r" * 100
    manager = field_manager(long)
    assert len(manager) == 128
    assert manager != field_manager("o" * 39 + "/" + "r" * 99 + "s")
    assert field_manager("acme/shop") == "idp-copilot/acme/shop"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("staging_kinds", "ClusterRole.rbac.authorization.k8s.io", "is cluster-scoped"),
        ("staging_kinds", "deployments", "is not Kind or Kind.group"),
        ("staging_ingress_domains", "*.acme.dev", "is not a DNS name"),
        ("staging_namespaces", "acme/shop=Shop_Staging", "owner/repo=namespace"),
    ],
)
def test_bad_operator_settings_are_named(settings, variable, value, says):
    with pytest.raises(StagingPolicyError, match=says) as err:
        policy(settings, **{variable: value})
    assert str(err.value).startswith(f"IDP_{variable.upper()}: ")


def test_hosts_must_end_with_an_allowed_domain(settings):
    rule = policy(settings, staging_ingress_domains="staging.acme.dev,preview.acme.dev")
    assert rule.host_allowed("shop.staging.acme.dev")
    assert rule.host_allowed("staging.acme.dev")
    assert not rule.host_allowed("shop.acme.dev")
    assert not rule.host_allowed("evilstaging.acme.dev")
    assert rule.staging_host("shop") == "shop.staging.acme.dev"
    assert policy(settings).staging_host("shop") is None


def test_a_repository_may_pick_only_a_context_the_operator_allows(settings):
    rule = policy(settings, staging_contexts="staging-eu,staging-us")
    assert rule.context_for(None) == "staging-eu"
    assert rule.context_for("staging-us") == "staging-us"
    with pytest.raises(StagingPolicyError, match="does not allow .*staging-eu, staging-us"):
        rule.context_for("prod")
    with pytest.raises(StagingPolicyError, match="IDP_STAGING_CONTEXTS: none"):
        policy(settings).context_for("anything")
    assert policy(settings).context_for(None) is None


def _kubeconfig(tmp_path):
    def context(name: str, port: int) -> tuple[dict, dict]:
        cluster = {"name": name, "cluster": {"server": f"http://127.0.0.1:{port}"}}
        return cluster, {"name": name, "context": {"cluster": name, "user": "u"}}

    (eu_cluster, eu), (prod_cluster, prod) = context("staging-eu", 1), context("prod", 2)
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [eu_cluster, prod_cluster],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [eu, prod],
                "current-context": "prod",
            }
        )
    )
    return path


def test_the_client_uses_the_operators_context_never_the_current_or_a_forbidden_one(
    settings, tmp_path
):
    configured = settings.model_copy(
        update={"kubeconfig": _kubeconfig(tmp_path), "staging_contexts": "staging-eu"}
    )
    cluster = KubernetesCluster.from_settings(configured)
    assert cluster.api.configuration.host == "http://127.0.0.1:1"  # not current-context prod
    with pytest.raises(ClusterError, match="asks for the kube context 'prod'"):
        KubernetesCluster.from_settings(configured, context="prod")


def _deployment(generation: int, wanted: int, **status) -> dict:
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": wanted},
        "status": status,
    }


@pytest.mark.parametrize(
    ("obj", "done", "says"),
    [
        (_deployment(2, 2, observedGeneration=1), False, "observe Deployment web's new spec"),
        (_deployment(2, 2, observedGeneration=2, updatedReplicas=1), False, "1 of 2 new"),
        (
            _deployment(2, 2, observedGeneration=2, updatedReplicas=2, replicas=3),
            False,
            "1 old replicas of web are pending termination",
        ),
        (
            _deployment(2, 2, observedGeneration=2, updatedReplicas=2, replicas=2),
            False,
            "0 of 2 updated replicas of web are available",
        ),
        (
            _deployment(
                2, 2, observedGeneration=2, updatedReplicas=2, replicas=2, availableReplicas=2
            ),
            True,
            "web: 2 of 2 replicas available",
        ),
    ],
)
def test_a_rollout_is_done_when_kubectl_rollout_status_would_say_so(obj, done, says):
    """https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#complete-deployment
    and kubectl's pkg/polymorphichelpers/rollout_status.go, in the same order."""
    state = deployment_state(obj)
    assert state.done is done and says in state.message and not state.failed


def test_an_overlay_using_more_than_the_app_writes_is_refused_by_name():
    base = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}]
    with pytest.raises(OverlayError, match="uses configMapGenerator, helmCharts"):
        build(base, {"resources": ["../../base"], "helmCharts": [], "configMapGenerator": []})
    with pytest.raises(OverlayError, match=r"resources must be exactly \['../../base'\]"):
        build(base, {"resources": ["https://github.com/evil/base"]})
    with pytest.raises(OverlayError, match="may not reach selectors"):
        build(base, {"resources": ["../../base"], "labels": [{"includeSelectors": True}]})
