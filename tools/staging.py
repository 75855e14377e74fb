"""Staging isolation: the operator's rules for where and what the App deploys.

Everything here comes from `Settings` (IDP_STAGING_*), never from a repository or from text
a requester typed: the namespace derives from the repository's name, each repository applies
as its own field manager, and only the operator's kinds, contexts and Ingress domains pass.
Pure functions, so the renderer (which writes the overlay) and the deploy (which applies it)
agree by construction.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.config import Settings

FIELD_MANAGER_PREFIX = "idp-copilot"
# The API server refuses longer field managers (apimachinery ValidateFieldManager).
MAX_FIELD_MANAGER = 128
MAX_NAMESPACE = 63
HASH_CHARS = 10
_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HOST_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KIND_RE = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}(\.[a-z0-9][-a-z0-9.]{0,252})?$")
_REPO_RE = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")

# Cluster-scoped kinds an operator might list by mistake: never applied, whatever the list
# says (the deploy also refuses any kind API discovery reports as cluster-scoped).
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "IngressClass",
        "PriorityClass",
        "RuntimeClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "APIService",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "CertificateSigningRequest",
        "VolumeAttachment",
        "CSIDriver",
        "CSINode",
        "FlowSchema",
        "PriorityLevelConfiguration",
    }
)


class StagingPolicyError(ValueError):
    """An operator setting or an object breaks the staging rules; `str()` names the fix."""


@dataclass(frozen=True)
class StagingPolicy:
    """The IDP_STAGING_* settings, parsed."""

    contexts: tuple[str, ...]
    prefix: str
    namespaces: dict[str, str]
    kinds: frozenset[str]
    domains: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> StagingPolicy:
        kinds = _split(settings.staging_kinds)
        for kind in kinds:
            if not _KIND_RE.match(kind):
                raise StagingPolicyError(
                    f"IDP_STAGING_KINDS: {kind!r} is not Kind or Kind.group, e.g. Deployment.apps"
                )
            if kind.split(".", 1)[0] in CLUSTER_SCOPED:
                raise StagingPolicyError(
                    f"IDP_STAGING_KINDS: {kind} is cluster-scoped; the App applies only "
                    "namespaced kinds, remove it"
                )
        domains = tuple(d.lower().strip(".") for d in _split(settings.staging_ingress_domains))
        for domain in domains:
            if not _HOST_RE.match(domain):
                raise StagingPolicyError(
                    f"IDP_STAGING_INGRESS_DOMAINS: {domain!r} is not a DNS name, "
                    "e.g. staging.example.com"
                )
        mapping: dict[str, str] = {}
        for entry in _split(settings.staging_namespaces):
            repo, _, namespace = entry.partition("=")
            repo, namespace = repo.strip(), namespace.strip()
            if not _REPO_RE.match(repo) or not _LABEL_RE.match(namespace):
                raise StagingPolicyError(
                    f"IDP_STAGING_NAMESPACES: {entry!r} is not owner/repo=namespace with a "
                    "DNS-label namespace, e.g. acme/payments=payments-staging"
                )
            mapping[repo.lower()] = namespace
        return cls(
            contexts=tuple(_split(settings.staging_contexts)),
            prefix=settings.staging_namespace_prefix,
            namespaces=mapping,
            kinds=frozenset(kinds),
            domains=domains,
        )

    # -- where ------------------------------------------------------------------------------

    def namespace_for(self, repo: str) -> str:
        """The staging namespace of repository `owner/name`: the operator's mapping, else
        PREFIX + readable owner-repo + a hash of the exact name + `-staging`. The hash keeps
        `acme/payments-api` and `acme-payments/api` apart, which the readable part cannot."""
        key = repo.lower()
        if key in self.namespaces:
            return self.namespaces[key]
        digest = hashlib.sha256(key.encode()).hexdigest()[:HASH_CHARS]
        suffix = f"-{digest}-staging"
        readable = re.sub(r"[^a-z0-9]+", "-", key).strip("-")
        room = MAX_NAMESPACE - len(self.prefix) - len(suffix)
        readable = readable[:room].rstrip("-")
        name = f"{self.prefix}{readable}{suffix}"
        return name.lstrip("-") or f"r{suffix}"

    def context_for(self, requested: str | None) -> str | None:
        """The kubeconfig context to use: the repository's pick when the operator allows
        it, else the operator's first; None (the current context) when none are listed."""
        if requested is None:
            return self.contexts[0] if self.contexts else None
        if requested in self.contexts:
            return requested
        allowed = ", ".join(self.contexts) or "none"
        raise StagingPolicyError(
            f"`.github/idp-copilot.yml` asks for the kube context {requested!r}, which the "
            f"operator does not allow (IDP_STAGING_CONTEXTS: {allowed}); remove "
            "`staging.context` or pick an allowed one"
        )

    def staging_host(self, service: str) -> str | None:
        """The generated staging host of a service: NAME.<first allowed domain>."""
        return f"{service}.{self.domains[0]}" if self.domains else None

    # -- what -------------------------------------------------------------------------------

    def check_object(self, obj: dict[str, Any]) -> None:
        """Raise when `obj` is not a kind the operator allows, or is an Ingress with a host
        outside the allowed domains."""
        kind, group = obj.get("kind", ""), _group(obj.get("apiVersion", ""))
        qualified = f"{kind}.{group}" if group else kind
        name = (obj.get("metadata") or {}).get("name", "")
        if kind in CLUSTER_SCOPED:
            raise StagingPolicyError(
                f"{kind} {name} is cluster-scoped: the App deploys only namespaced objects; "
                "ask the platform team to apply it"
            )
        if qualified not in self.kinds:
            raise StagingPolicyError(
                f"{kind} {name} ({qualified}) is not a kind the operator lets the App deploy "
                f"to staging (IDP_STAGING_KINDS: {', '.join(sorted(self.kinds))})"
            )
        if qualified == "Ingress.networking.k8s.io":
            for host in ingress_hosts(obj):
                if not self.host_allowed(host):
                    allowed = ", ".join(self.domains) or "none set"
                    raise StagingPolicyError(
                        f"Ingress {name} asks for host {host!r}, outside the domains the "
                        f"operator allows for staging (IDP_STAGING_INGRESS_DOMAINS: {allowed}); "
                        "use a host under one of them"
                    )

    def host_allowed(self, host: str) -> bool:
        host = host.lower()
        return any(host == d or host.endswith("." + d) for d in self.domains)


def field_manager(repo: str) -> str:
    """`idp-copilot/owner/repo`: each repository owns its own fields, so one repository's
    apply conflicts with (instead of silently taking over) another's. Shortened with a hash
    to the 128 characters the API server allows."""
    name = f"{FIELD_MANAGER_PREFIX}/{repo.lower()}"
    if len(name) <= MAX_FIELD_MANAGER:
        return name
    digest = hashlib.sha256(repo.lower().encode()).hexdigest()[:HASH_CHARS]
    return f"{name[: MAX_FIELD_MANAGER - HASH_CHARS - 1]}-{digest}"


def ingress_hosts(obj: dict[str, Any]) -> list[str]:
    """Every host an Ingress claims: its rules' hosts and its TLS hosts."""
    spec = obj.get("spec") or {}
    hosts = [str(r.get("host")) for r in spec.get("rules") or [] if r.get("host")]
    hosts += [str(h) for t in spec.get("tls") or [] for h in t.get("hosts") or []]
    return hosts


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
