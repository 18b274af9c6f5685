"""The API server's validation of the kinds the sandbox models: 422 Invalid with `details.causes`.

Runs after decoding (see fieldtypes) and defaulting, before anything is stored. Messages are the
real server's, so a client that matches on them behaves the same against the sandbox.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.status import KubeError

MAX_DATA = 1024 * 1024  # ConfigMap and Secret payload (core.MaxSecretSize)
MAX_ANNOTATIONS = 256 * 1024
_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_CONFIG_KEY = r"[-._a-zA-Z0-9]+"
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    f"validation is '{_SUBDOMAIN}')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    f"validation is '{_LABEL}')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    f"regex used for validation is '{_DNS1035}')"
)
QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    f"validation is '{_QUALIFIED}')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    f"'12345', regex used for validation is '{_LABEL_VALUE}')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
    f"or 'KEY_NAME',  or 'key-name', regex used for validation is '{_CONFIG_KEY}')"
)


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(f"^{pattern}$")


SUBDOMAIN, LABEL, DNS1035 = _full(_SUBDOMAIN), _full(_LABEL), _full(_DNS1035)
QUALIFIED, LABEL_VALUE, CONFIG_KEY = _full(_QUALIFIED), _full(_LABEL_VALUE), _full(_CONFIG_KEY)


@dataclass(frozen=True)
class FieldError:
    """One cause of a 422, as `field.Error` renders it."""

    field: str
    reason: str
    detail: str

    def cause(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.detail, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}"


def _go(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "FieldValueInvalid", f"Invalid value: {_go(value)}: {detail}")


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def not_supported(path: str, value: Any, allowed: Iterable[str]) -> FieldError:
    choices = ", ".join(json.dumps(a) for a in sorted(allowed))
    return FieldError(
        path, "FieldValueNotSupported", f"Unsupported value: {_go(value)}: supported values: {choices}"
    )


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(path, "FieldValueDuplicate", f"Duplicate value: {_go(value)}")


def too_long(path: str, limit: int) -> FieldError:
    return FieldError(path, "FieldValueTooLong", f"Too long: must have at most {limit} bytes")


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(path, "FieldValueForbidden", f"Forbidden: {detail}")


def rejected(rt: ResourceType, name: str, errors: list[FieldError]) -> KubeError:
    """The 422 a real server answers for `errors` (one line, or all of them in brackets)."""
    text = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    qualified = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    return KubeError(
        422,
        f'{qualified} "{name}" is invalid: {text}',
        details={"name": name, "group": rt.group, "kind": rt.kind, "causes": [e.cause() for e in errors]},
    )


# -- names, labels, annotations ------------------------------------------------------------------


def dns_name(path: str, name: str, pattern: re.Pattern[str], message: str, limit: int) -> list[FieldError]:
    errors = []
    if len(name) > limit:
        errors.append(invalid(path, name, f"must be no more than {limit} characters"))
    if not pattern.match(name):
        errors.append(invalid(path, name, message))
    return errors


def path_segment_name(path: str, name: str) -> list[FieldError]:
    if name in (".", ".."):
        return [invalid(path, name, f"may not be '{name}'")]
    return [invalid(path, name, f"may not contain '{c}'") for c in "/%" if c in name]


def subdomain(path: str, name: str) -> list[FieldError]:
    return dns_name(path, name, SUBDOMAIN, SUBDOMAIN_MSG, 253)


def label_name(path: str, name: str) -> list[FieldError]:
    return dns_name(path, name, LABEL, LABEL_MSG, 63)


def dns1035(path: str, name: str) -> list[FieldError]:
    return dns_name(path, name, DNS1035, DNS1035_MSG, 63)


NAME_RULES: dict[str, Callable[[str, str], list[FieldError]]] = {
    "Namespace": label_name,
    "Service": dns1035,
    "Role": path_segment_name,
    "ClusterRole": path_segment_name,
    "RoleBinding": path_segment_name,
    "ClusterRoleBinding": path_segment_name,
}


def qualified_name(path: str, key: str) -> list[FieldError]:
    prefix, _, name = key.rpartition("/")
    errors = []
    if "/" in prefix:
        return [invalid(path, key, QUALIFIED_MSG.replace("name part must", "a qualified name must"))]
    if "/" in key:
        if not prefix:
            errors.append(invalid(path, key, "prefix part must be non-empty"))
        elif len(prefix) > 253 or not SUBDOMAIN.match(prefix):
            errors.append(invalid(path, key, f"prefix part {SUBDOMAIN_MSG}"))
    if not name:
        errors.append(invalid(path, key, "name part must be non-empty"))
    elif len(name) > 63:
        errors.append(invalid(path, key, "name part must be no more than 63 characters"))
    elif not QUALIFIED.match(name):
        errors.append(invalid(path, key, QUALIFIED_MSG))
    return errors


def labels(path: str, value: dict[str, str]) -> list[FieldError]:
    errors = []
    for key, text in value.items():
        errors += qualified_name(path, key)
        if len(text) > 63:
            errors.append(invalid(path, text, "must be no more than 63 characters"))
        elif not LABEL_VALUE.match(text):
            errors.append(invalid(path, text, LABEL_VALUE_MSG))
    return errors


def annotation_map(path: str, value: dict[str, str]) -> list[FieldError]:
    errors = [e for key in value for e in qualified_name(path, key.lower())]
    if sum(len(k) + len(v) for k, v in value.items()) > MAX_ANNOTATIONS:
        errors.append(too_long(path, MAX_ANNOTATIONS))
    return errors


def metadata(rt: ResourceType, meta: dict[str, Any]) -> list[FieldError]:
    rule = NAME_RULES.get(rt.kind, subdomain) if not rt.custom else subdomain
    errors = (
        rule("metadata.name", meta.get("name") or "")
        if meta.get("name")
        else [required("metadata.name", "name or generateName is required")]
    )
    errors += labels("metadata.labels", meta.get("labels") or {})
    errors += annotation_map("metadata.annotations", meta.get("annotations") or {})
    return errors


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


def _selector_matches(selector: dict[str, Any], labels_: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels") or {}
    return all(labels_.get(k) == v for k, v in wanted.items()) and bool(
        wanted or selector.get("matchExpressions")
    )


def workload(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors = []
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        errors.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    template = spec.get("template") or {}
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    selector = spec.get("selector")
    if not selector:
        errors.append(required("spec.selector"))
    elif not _selector_matches(selector, template_labels):
        errors.append(
            invalid(
                "spec.template.metadata.labels",
                template_labels,
                "`selector` does not match template `labels`",
            )
        )
    return errors + pod_spec("spec.template.spec", template.get("spec") or {})


def pod_spec(path: str, spec: dict[str, Any]) -> list[FieldError]:
    containers = spec.get("containers") or []
    if not containers:
        return [required(f"{path}.containers")]
    errors, names = [], set()
    for i, container in enumerate(containers):
        here, name = f"{path}.containers[{i}]", container.get("name") or ""
        if not name:
            errors.append(required(f"{here}.name"))
        elif name in names:
            errors.append(duplicate(f"{here}.name", name))
        else:
            errors += label_name(f"{here}.name", name)
        names.add(name)
        if not container.get("image"):
            errors.append(required(f"{here}.image"))
    return errors


def crd(obj: dict[str, Any]) -> list[FieldError]:
    spec, name = obj.get("spec") or {}, (obj.get("metadata") or {}).get("name", "")
    names, group = spec.get("names") or {}, spec.get("group") or ""
    errors = [] if group else [required("spec.group")]
    if group and "." not in group:
        errors.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    elif group and BUILTIN_GROUP.search(group) and not _approved(obj):
        errors.append(
            invalid(
                "metadata.annotations[api-approved.kubernetes.io]",
                "",
                'protected groups must have approval annotation "api-approved.kubernetes.io"',
            )
        )
    for field in ("plural", "kind"):
        if not names.get(field):
            errors.append(required(f"spec.names.{field}"))
    if names.get("plural") and group and name != f"{names['plural']}.{group}":
        errors.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in ("Cluster", "Namespaced"):
        errors.append(not_supported("spec.scope", spec.get("scope", ""), ("Cluster", "Namespaced")))
    versions = spec.get("versions") or []
    if not versions:
        errors.append(required("spec.versions", "must have exactly one version marked as storage version"))
    names_seen: set[str] = set()
    for i, v in enumerate(versions):
        version = v.get("name") or ""
        if not version:
            errors.append(required(f"spec.versions[{i}].name"))
        elif version in names_seen:
            errors.append(duplicate(f"spec.versions[{i}].name", version))
        else:
            errors += dns1035(f"spec.versions[{i}].name", version)
        names_seen.add(version)
    if names.get("plural"):
        errors += dns1035("spec.names.plural", names["plural"])
    if versions and sum(1 for v in versions if v.get("storage")) != 1:
        errors.append(
            invalid(
                "spec.versions",
                [v.get("name") for v in versions],
                "must have exactly one version marked as storage version",
            )
        )
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
    errors = []
    for i, hook in enumerate(obj.get("webhooks") or []):
        here = f"webhooks[{i}]"
        errors += (
            subdomain(f"{here}.name", hook.get("name") or "")
            if hook.get("name")
            else [required(f"{here}.name")]
        )
        effects = hook.get("sideEffects")
        if effects not in ("None", "NoneOnDryRun"):
            errors.append(not_supported(f"{here}.sideEffects", effects or "", ("None", "NoneOnDryRun")))
        if not hook.get("admissionReviewVersions"):
            errors.append(required(f"{here}.admissionReviewVersions", "must specify one of v1, v1beta1"))
        policy = hook.get("failurePolicy", "Fail")
        if policy not in ("Fail", "Ignore"):
            errors.append(not_supported(f"{here}.failurePolicy", policy, ("Fail", "Ignore")))
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


KIND_RULES: dict[str, Callable[[dict[str, Any]], list[FieldError]]] = {
    "/configmaps": configmap,
    "/secrets": secret,
    "/services": service,
    "apps/deployments": workload,
    "apps/replicasets": workload,
    "apps/statefulsets": workload,
    "apps/daemonsets": workload,
    "apiextensions.k8s.io/customresourcedefinitions": crd,
    "discovery.k8s.io/endpointslices": endpoint_slice,
    "admissionregistration.k8s.io/validatingwebhookconfigurations": webhooks,
    "admissionregistration.k8s.io/mutatingwebhookconfigurations": webhooks,
    "rbac.authorization.k8s.io/roles": rbac_rules,
    "rbac.authorization.k8s.io/clusterroles": rbac_rules,
    "rbac.authorization.k8s.io/rolebindings": role_ref,
    "rbac.authorization.k8s.io/clusterrolebindings": role_ref,
}


def check_metadata(rt: ResourceType, meta: dict[str, Any]) -> None:
    """Name, labels and annotations alone: what must hold before the name is even looked up."""
    errors = metadata(rt, meta)
    if errors:
        raise rejected(rt, meta.get("name") or "", errors)


def validate(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Raise the real server's 422 when `obj` (decoded and defaulted) may not be stored."""
    meta = obj.get("metadata") or {}
    errors = metadata(rt, meta)
    rule = KIND_RULES.get(rt.key) if not rt.custom else None
    if rule is not None:
        errors += rule(obj)
    if errors:
        raise rejected(rt, meta.get("name") or meta.get("generateName") or "", errors)
