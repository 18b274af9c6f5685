"""The API server's defaulting (Kubernetes `defaults.go` of each group): what a read returns that nobody sent.

Applied to every write of a built-in kind before admission and validation, so that clients which read
back `timeoutSeconds`, `ipFamilyPolicy` or `terminationMessagePolicy` see what a real cluster shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshwright.sandbox.kube.registry import ResourceType

CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _dict(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def _dicts(parent: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = parent.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _probe(probe: dict[str, Any]) -> None:
    for key, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        probe.setdefault(key, value)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("scheme", "HTTP")


def _pull_policy(image: Any) -> str:
    name = str(image or "").rsplit("/", 1)[-1]
    tagged = ":" in name or "@" in name
    return "Always" if not tagged or name.endswith(":latest") else "IfNotPresent"


def container(c: dict[str, Any]) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("imagePullPolicy", _pull_policy(c.get("image")))
    for port in _dicts(c, "ports"):
        port.setdefault("protocol", "TCP")
    for key in PROBES:
        if isinstance(c.get(key), dict):
            _probe(c[key])


def pod_spec(spec: dict[str, Any]) -> None:
    for key, value in (
        ("restartPolicy", "Always"),
        ("terminationGracePeriodSeconds", 30),
        ("dnsPolicy", "ClusterFirst"),
        ("schedulerName", "default-scheduler"),
    ):
        spec.setdefault(key, value)
    _dict(spec, "securityContext")
    for c in _dicts(spec, "containers") + _dicts(spec, "initContainers"):
        container(c)
    for volume in _dicts(spec, "volumes"):
        for source in ("secret", "configMap", "projected", "downwardAPI"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)


def _template(obj: dict[str, Any]) -> None:
    pod_spec(_dict(_dict(_dict(obj, "spec"), "template"), "spec"))


def deployment(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    for key, value in (("replicas", 1), ("revisionHistoryLimit", 10), ("progressDeadlineSeconds", 600)):
        spec.setdefault(key, value)
    strategy = _dict(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
    _template(obj)


def service(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    kind = spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if kind == "ExternalName":
        return
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)


def _webhooks(obj: dict[str, Any], *, mutating: bool) -> None:
    for hook in _dicts(obj, "webhooks"):
        for key, value in (("failurePolicy", "Fail"), ("matchPolicy", "Equivalent"), ("timeoutSeconds", 10)):
            hook.setdefault(key, value)
        _dict(hook, "namespaceSelector")
        _dict(hook, "objectSelector")
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")
        for rule in _dicts(hook, "rules"):
            rule.setdefault("scope", "*")
        service_ref = _dict(hook, "clientConfig").get("service")
        if isinstance(service_ref, dict):
            service_ref.setdefault("port", 443)


def crd(obj: dict[str, Any]) -> None:
    finalizers = _dict(obj, "metadata").setdefault("finalizers", [])
    if isinstance(finalizers, list) and CRD_FINALIZER not in finalizers:
        finalizers.append(CRD_FINALIZER)
    _dict(_dict(obj, "spec"), "conversion").setdefault("strategy", "None")


DEFAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "/services": service,
    "/pods": lambda obj: pod_spec(_dict(obj, "spec")),
    "apps/deployments": deployment,
    "apps/replicasets": _template,
    "apps/statefulsets": _template,
    "apps/daemonsets": _template,
    "batch/jobs": _template,
    "admissionregistration.k8s.io/validatingwebhookconfigurations": lambda o: _webhooks(o, mutating=False),
    "admissionregistration.k8s.io/mutatingwebhookconfigurations": lambda o: _webhooks(o, mutating=True),
    "apiextensions.k8s.io/customresourcedefinitions": crd,
}


def apply(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Fill in the defaults of a built-in kind, in place; custom resources get theirs from their schema."""
    fill = DEFAULTS.get(rt.key) if not rt.custom else None
    if fill is not None:
        fill(obj)
