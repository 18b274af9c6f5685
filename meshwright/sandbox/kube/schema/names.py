"""Names, label keys and values, annotations: the API server's metadata rules, with its messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.schema.fielderrors import FieldError, invalid, required, too_long

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
