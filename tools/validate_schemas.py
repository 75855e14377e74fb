"""JSON schemas for the objects `kubernetes-validate` does not know: Prometheus Operator
resources, kustomizations and Backstage entities.

Written from the Prometheus Operator CRDs, the kustomize Kustomization type and the Backstage
Component schema, keeping the structure and the field names (unknown fields are errors, as in
`kubernetes-validate --strict`); value formats are checked where a typo would break the
object (durations, rule and alert names).
"""

from __future__ import annotations

from typing import Any

_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
    r"(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": _LABELS, "matchExpressions": {"type": "array"}},
}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1}, "labels": _LABELS},
}


def _words(text: str) -> list[str]:
    return text.split()


def _object(kind: str, spec: dict[str, Any], api: str = "monitoring.coreos.com/v1") -> dict:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


_ENDPOINT_FIELDS = _words(
    "authorization basicAuth bearerTokenFile bearerTokenSecret enableHttp2 filterRunning "
    "followRedirects honorLabels honorTimestamps metricRelabelings noProxy oauth2 params "
    "portNumber proxyConnectHeader proxyFromEnvironment proxyUrl relabelings tlsConfig "
    "trackTimestampsStaleness targetPort"
)
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **{name: {} for name in _ENDPOINT_FIELDS},
        "port": {"type": "string", "minLength": 1},
        "path": {"type": "string", "pattern": "^/"},
        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
        "interval": _DURATION,
        "scrapeTimeout": _DURATION,
    },
}
_MONITOR_FIELDS = _words(
    "attachMetadata bodySizeLimit convertClassicHistogramsToNHCB fallbackScrapeProtocol "
    "keepDroppedTargets labelLimit labelNameLengthLimit labelValueLengthLimit namespaceSelector "
    "nativeHistogramBucketLimit nativeHistogramMinBucketFactor podTargetLabels sampleLimit "
    "scrapeClass scrapeClassicHistograms scrapeNativeHistograms scrapeProtocols "
    "selectorMechanism targetLimit"
)


def _monitor_spec(endpoints_key: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["selector", endpoints_key],
        "additionalProperties": False,
        "properties": {
            **{name: {} for name in (*_MONITOR_FIELDS, *extra)},
            "jobLabel": {"type": "string"},
            "selector": _LABEL_SELECTOR,
            endpoints_key: {"type": "array", "minItems": 1, "items": _ENDPOINT},
        },
    }


_RULE = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    "properties": {
        "record": {"type": "string", "pattern": "^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
        "alert": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
        "expr": {"type": ["string", "integer"], "minLength": 1},
        "for": _DURATION,
        "keep_firing_for": _DURATION,
        "labels": _LABELS,
        "annotations": _LABELS,
    },
    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
}
_RULE_GROUP = {
    "type": "object",
    "required": ["name", "rules"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "interval": _DURATION,
        "query_offset": _DURATION,
        "limit": {"type": "integer"},
        "labels": _LABELS,
        "partial_response_strategy": {"type": "string"},
        "rules": {"type": "array", "items": _RULE},
    },
}

_KUSTOMIZATION_FIELDS = _words(
    "bases buildMetadata commonAnnotations commonLabels components configMapGenerator "
    "configurations crds generatorOptions generators helmCharts helmGlobals metadata nameSuffix "
    "namePrefix openapi patchesJson6902 patchesStrategicMerge replacements replicas "
    "secretGenerator sortOptions transformers validators vars"
)

SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _object(
        "ServiceMonitor",
        _monitor_spec("endpoints", ("targetLabels", "serviceDiscoveryRole")),
    ),
    ("monitoring.coreos.com/v1", "PodMonitor"): _object(
        "PodMonitor", _monitor_spec("podMetricsEndpoints")
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): _object(
        "PrometheusRule",
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {"groups": {"type": "array", "items": _RULE_GROUP}},
        },
    ),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **{name: {} for name in _KUSTOMIZATION_FIELDS},
            "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"},
            "kind": {"const": "Kustomization"},
            "namespace": {
                "type": "string",
                "maxLength": 63,
                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            },
            "resources": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "labels": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["pairs"],
                    "additionalProperties": False,
                    "properties": {
                        "pairs": _LABELS,
                        "includeSelectors": {"type": "boolean"},
                        "includeTemplates": {"type": "boolean"},
                        "fields": {"type": "array"},
                    },
                },
            },
            "images": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "newName": {"type": "string"},
                        "newTag": {"type": ["string", "number"]},
                        "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                        "tagSuffix": {"type": "string"},
                    },
                },
            },
            "patches": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "path": {"type": "string"},
                        "patch": {"type": "string"},
                        "target": {"type": "object"},
                        "options": {"type": "object"},
                    },
                    "oneOf": [{"required": ["path"]}, {"required": ["patch"]}],
                },
            },
        },
    },
    ("backstage.io/v1alpha1", "Component"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {
                        "type": "string",
                        "maxLength": 63,
                        "pattern": "^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$",
                    },
                    "annotations": _LABELS,
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
            "spec": {
                "type": "object",
                "required": ["type", "lifecycle", "owner"],
                "properties": {
                    "type": {"type": "string", "minLength": 1},
                    "lifecycle": {"type": "string", "minLength": 1},
                    "owner": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}
