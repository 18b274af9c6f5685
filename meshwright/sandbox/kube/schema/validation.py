"""The API server's validation of the kinds the sandbox models: 422 Invalid with `details.causes`.

Runs after decoding (see decoding) and defaulting, before anything is stored. Messages are the
real server's, so a client that matches on them behaves the same against the sandbox.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

from meshwright.sandbox import dotted
from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.schema.fielderrors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    rejected,
    required,
    too_long,
)
from meshwright.sandbox.kube.schema.names import (
    CONFIG_KEY,
    CONFIG_KEY_MSG,
    dns1035,
    label_name,
    metadata,
    subdomain,
)
from meshwright.sandbox.kube.schema.podrules import workload

MAX_DATA = 1024 * 1024  # ConfigMap and Secret payload (core.MaxSecretSize)


# -- kinds ---------------------------------------------------------------------------------------


def _config_data(path: str, data: dict[str, str], sizes: list[int]) -> list[FieldError]:
    errors = []
    for key, value in data.items():
        if len(key) > 253 or not CONFIG_KEY.match(key) or key in (".", ".."):
            errors.append(invalid(f"{path}[{key}]", key, CONFIG_KEY_MSG))
        sizes.append(len(key) + len(value))
    return errors


def _decoded_len(value: str) -> int:
    return len(base64.b64decode(value)) if value else 0


def configmap(obj: dict[str, Any]) -> list[FieldError]:
    sizes: list[int] = []
    errors = _config_data("data", obj.get("data") or {}, sizes)
    binary = {k: "x" * _decoded_len(v) for k, v in (obj.get("binaryData") or {}).items()}
    errors += _config_data("binaryData", binary, sizes)
    if sum(sizes) > MAX_DATA:
        errors.append(too_long("", MAX_DATA))
    return errors


def secret(obj: dict[str, Any]) -> list[FieldError]:
    sizes: list[int] = []
    data = {k: "x" * _decoded_len(v) for k, v in (obj.get("data") or {}).items()}
    errors = _config_data("data", data, sizes)
    if sum(sizes) > MAX_DATA:
        errors.append(too_long("data", MAX_DATA))
    if obj.get("type") == "kubernetes.io/service-account-token":
        notes = (obj.get("metadata") or {}).get("annotations") or {}
        if not notes.get("kubernetes.io/service-account.name"):
            errors.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    return errors


SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
PROTOCOLS = ("TCP", "UDP", "SCTP")


def service(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    errors = [] if kind in SERVICE_TYPES else [not_supported("spec.type", kind, SERVICE_TYPES)]
    if spec.get("sessionAffinity", "None") not in ("None", "ClientIP"):
        errors.append(not_supported("spec.sessionAffinity", spec["sessionAffinity"], ("ClientIP", "None")))
    if spec.get("externalTrafficPolicy") not in (None, "", "Cluster", "Local"):
        errors.append(
            not_supported("spec.externalTrafficPolicy", spec["externalTrafficPolicy"], ("Cluster", "Local"))
        )
    ports = spec.get("ports") or []
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        errors.append(required("spec.ports"))
    return errors + service_ports(ports, kind)


def service_ports(ports: list[dict[str, Any]], kind: str) -> list[FieldError]:
    errors, names = [], set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        name = port.get("name", "")
        if len(ports) > 1 and not name:
            errors.append(required(f"{path}.name"))
        elif name in names:
            errors.append(duplicate(f"{path}.name", name))
        elif name:
            errors += label_name(f"{path}.name", name)
        names.add(name)
        errors += _port_number(f"{path}.port", port.get("port"))
        if port.get("protocol", "TCP") not in PROTOCOLS:
            errors.append(not_supported(f"{path}.protocol", port["protocol"], PROTOCOLS))
        if port.get("nodePort") and kind not in ("NodePort", "LoadBalancer"):
            errors.append(forbidden(f"{path}.nodePort", f"may not be used when `type` is '{kind}'"))
    return errors


def _port_number(path: str, value: Any) -> list[FieldError]:
    if value is None:
        return [required(path)]
    if not 1 <= value <= 65535:
        return [invalid(path, value, "must be between 1 and 65535, inclusive")]
    return []


def crd(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors = (
        _crd_group(obj, spec.get("group") or "")
        + _crd_names(obj, spec)
        + _crd_versions(spec.get("versions") or [])
    )
    if spec.get("scope") not in ("Cluster", "Namespaced"):
        errors.append(not_supported("spec.scope", spec.get("scope", ""), ("Cluster", "Namespaced")))
    return errors


def _crd_group(obj: dict[str, Any], group: str) -> list[FieldError]:
    if not group:
        return [required("spec.group")]
    if "." not in group:
        return [invalid("spec.group", group, "should be a domain with at least one dot")]
    if BUILTIN_GROUP.search(group) and not _approved(obj):
        message = 'protected groups must have approval annotation "api-approved.kubernetes.io"'
        return [invalid("metadata.annotations[api-approved.kubernetes.io]", "", message)]
    return []


def _crd_names(obj: dict[str, Any], spec: dict[str, Any]) -> list[FieldError]:
    names, group = spec.get("names") or {}, spec.get("group") or ""
    name = (obj.get("metadata") or {}).get("name", "")
    errors = [required(f"spec.names.{field}") for field in ("plural", "kind") if not names.get(field)]
    if names.get("plural"):
        errors += dns1035("spec.names.plural", names["plural"])
        if group and name != f"{names['plural']}.{group}":
            errors.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    return errors


def _crd_versions(versions: list[dict[str, Any]]) -> list[FieldError]:
    storage = "must have exactly one version marked as storage version"
    if not versions:
        return [required("spec.versions", storage)]
    errors, seen = [], set()
    for i, v in enumerate(versions):
        version = v.get("name") or ""
        if not version:
            errors.append(required(f"spec.versions[{i}].name"))
        elif version in seen:
            errors.append(duplicate(f"spec.versions[{i}].name", version))
        else:
            errors += dns1035(f"spec.versions[{i}].name", version)
        seen.add(version)
    for i, v in enumerate(versions):
        if not isinstance((v.get("schema") or {}).get("openAPIV3Schema"), dict):
            errors.append(required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"))
    if sum(1 for v in versions if v.get("storage")) != 1:
        errors.append(invalid("spec.versions", [v.get("name") for v in versions], storage))
    return errors


BUILTIN_GROUP = re.compile(r"(^|\.)(k8s\.io|kubernetes\.io)$")


def _approved(obj: dict[str, Any]) -> bool:
    return bool(((obj.get("metadata") or {}).get("annotations") or {}).get("api-approved.kubernetes.io"))


def endpoint_slice(obj: dict[str, Any]) -> list[FieldError]:
    kind = obj.get("addressType")
    if not kind:
        return [required("addressType")]
    allowed = ("FQDN", "IPv4", "IPv6")
    return [] if kind in allowed else [not_supported("addressType", kind, allowed)]


def webhooks(obj: dict[str, Any]) -> list[FieldError]:
    errors, seen = [], set()
    for i, hook in enumerate(obj.get("webhooks") or []):
        here, name = f"webhooks[{i}]", hook.get("name") or ""
        if not name:
            errors.append(required(f"{here}.name"))
        elif name in seen:
            errors.append(duplicate(f"{here}.name", name))
        elif name.count(".") < 2 or subdomain(f"{here}.name", name):
            errors.append(
                invalid(
                    f"{here}.name", name, "should be a domain with at least three segments separated by dots"
                )
            )
        seen.add(name)
        errors += _webhook_fields(here, hook)
    return errors


def _webhook_fields(here: str, hook: dict[str, Any]) -> list[FieldError]:
    errors = []
    effects = hook.get("sideEffects")
    if not effects:
        errors.append(required(f"{here}.sideEffects", "must specify one of None, NoneOnDryRun"))
    elif effects not in ("None", "NoneOnDryRun"):
        errors.append(not_supported(f"{here}.sideEffects", effects, ("None", "NoneOnDryRun")))
    if not hook.get("admissionReviewVersions"):
        errors.append(required(f"{here}.admissionReviewVersions", "must specify one of v1, v1beta1"))
    policy = hook.get("failurePolicy", "Fail")
    if policy not in ("Fail", "Ignore"):
        errors.append(not_supported(f"{here}.failurePolicy", policy, ("Fail", "Ignore")))
    return errors + _client_config(f"{here}.clientConfig", hook.get("clientConfig") or {})


def _client_config(here: str, config: dict[str, Any]) -> list[FieldError]:
    url, service_ref = config.get("url"), config.get("service")
    if bool(url) == bool(service_ref):
        return [required(here, "exactly one of url or service is required")]
    if url:
        return (
            []
            if str(url).startswith("https://")
            else [invalid(f"{here}.url", url, "'https' is the only allowed URL scheme")]
        )
    path = (service_ref or {}).get("path")
    if path and not str(path).startswith("/"):
        return [invalid(f"{here}.service.path", path, "must start with a '/'")]
    return []


def endpoint_addresses(obj: dict[str, Any]) -> list[FieldError]:
    family = {"IPv4": ipaddress.IPv4Address, "IPv6": ipaddress.IPv6Address}.get(obj.get("addressType") or "")
    errors = []
    for i, endpoint in enumerate(obj.get("endpoints") or []):
        for j, address in enumerate(endpoint.get("addresses") or []):
            try:
                if family is not None:
                    family(address)
            except ValueError:
                errors.append(
                    invalid(
                        f"endpoints[{i}].addresses[{j}]",
                        address,
                        f"must be a valid {obj['addressType']} address",
                    )
                )
    for i, port in enumerate(obj.get("ports") or []):
        if port.get("name"):
            errors += label_name(f"ports[{i}].name", port["name"])
    return errors


def rbac_rules(obj: dict[str, Any]) -> list[FieldError]:
    return [
        required(f"rules[{i}].verbs", "verbs must contain at least one value")
        for i, rule in enumerate(obj.get("rules") or [])
        if not rule.get("verbs")
    ]


def role_ref(obj: dict[str, Any]) -> list[FieldError]:
    ref = obj.get("roleRef") or {}
    errors = [] if ref.get("name") else [required("roleRef.name")]
    if ref.get("kind") not in ("Role", "ClusterRole"):
        errors.append(not_supported("roleRef.kind", ref.get("kind", ""), ("ClusterRole", "Role")))
    return errors


def pdb(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        return [
            invalid(
                "spec", "policy.PodDisruptionBudgetSpec", "minAvailable and maxUnavailable cannot be both set"
            )
        ]
    return []


def hpa(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    errors = [] if low >= 1 else [invalid("spec.minReplicas", low, "must be greater than or equal to 1")]
    if high is None:
        errors.append(required("spec.maxReplicas"))
    elif high < low:
        errors.append(invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
    ref = spec.get("scaleTargetRef") or {}
    errors += [required(f"spec.scaleTargetRef.{f}") for f in ("kind", "name") if not ref.get(f)]
    return errors


def external_name(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    if spec.get("type") == "ExternalName" and not spec.get("externalName"):
        return [required("spec.externalName")]
    return []


def binding_subjects(obj: dict[str, Any]) -> list[FieldError]:
    return [
        required(f"subjects[{i}].namespace")
        for i, subject in enumerate(obj.get("subjects") or [])
        if subject.get("kind") == "ServiceAccount" and not subject.get("namespace")
    ]


KIND_RULES: dict[str, Callable[[dict[str, Any]], list[FieldError]]] = {
    "/configmaps": configmap,
    "/secrets": secret,
    "/services": lambda o: service(o) + external_name(o),
    "apps/deployments": workload,
    "apps/replicasets": workload,
    "apps/statefulsets": workload,
    "apps/daemonsets": workload,
    "apiextensions.k8s.io/customresourcedefinitions": crd,
    "discovery.k8s.io/endpointslices": lambda o: endpoint_slice(o) + endpoint_addresses(o),
    "admissionregistration.k8s.io/validatingwebhookconfigurations": webhooks,
    "admissionregistration.k8s.io/mutatingwebhookconfigurations": webhooks,
    "rbac.authorization.k8s.io/roles": rbac_rules,
    "rbac.authorization.k8s.io/clusterroles": rbac_rules,
    "rbac.authorization.k8s.io/rolebindings": role_ref,  # a RoleBinding's subjects default to its namespace
    "rbac.authorization.k8s.io/clusterrolebindings": lambda o: role_ref(o) + binding_subjects(o),
    "policy/poddisruptionbudgets": pdb,
    "autoscaling/horizontalpodautoscalers": hpa,
}


def check_metadata(rt: ResourceType, meta: dict[str, Any]) -> None:
    """Name, labels and annotations alone: what must hold before the name is even looked up."""
    errors = metadata(rt, meta)
    if errors:
        raise rejected(rt, meta.get("name") or "", errors)


IMMUTABLE: dict[str, tuple[str, ...]] = {
    "apps/deployments": ("spec.selector",),
    "apps/replicasets": ("spec.selector",),
    "apps/statefulsets": ("spec.selector",),
    "apps/daemonsets": ("spec.selector",),
    "batch/jobs": ("spec.selector", "spec.template"),
    "/services": ("spec.clusterIP",),
    "/secrets": ("type",),
    "apiextensions.k8s.io/customresourcedefinitions": ("spec.scope",),
    "rbac.authorization.k8s.io/rolebindings": ("roleRef",),
    "rbac.authorization.k8s.io/clusterrolebindings": ("roleRef",),
}


def immutable(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """Fields a real server refuses to change once set (an empty new value means "keep")."""
    errors = []
    for path in IMMUTABLE.get(rt.key, ()):
        before, after = dotted.get(old, path), dotted.get(obj, path)
        if before is not None and after is not None and before != after:
            errors.append(invalid(path, json.dumps(after, sort_keys=True), "field is immutable"))
    if rt.key in ("/secrets", "/configmaps") and old.get("immutable") is True:
        for field in ("data", "binaryData", "immutable"):
            if obj.get(field) != old.get(field):
                errors.append(forbidden(field, "field is immutable when `immutable` is set"))
    return errors


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    """Raise the real server's 422 when `obj` (decoded and defaulted) may not be stored (over `old`)."""
    meta = obj.get("metadata") or {}
    errors = metadata(rt, meta)
    rule = KIND_RULES.get(rt.key) if not rt.custom else None
    if rule is not None:
        errors += rule(obj)
    if old is not None and not rt.custom:
        errors += immutable(rt, obj, old)
    if errors:
        raise rejected(rt, meta.get("name") or meta.get("generateName") or "", errors)
