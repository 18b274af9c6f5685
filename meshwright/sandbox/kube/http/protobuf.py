"""Just enough of Kubernetes' protobuf encoding for `kubectl create <generator>` requests.

kubectl's typed generators (create namespace|secret|configmap|serviceaccount|token|deployment|
service) and `kubectl auth can-i` (a SelfSubjectAccessReview) POST `k8s\\0` + runtime.Unknown, and do not fall back to JSON on a 415. Field numbers
were read off kubectl's own requests. Unset (empty) fields are dropped, as JSON's omitempty does.
"""

from __future__ import annotations

import base64
from typing import Any

from meshwright.sandbox.kube.status import KubeError

MAGIC = b"k8s\x00"
Schema = dict[int, tuple[str, Any]]

MAP = {1: ("key", "s"), 2: ("value", "s")}
BYTES_MAP = {1: ("key", "s"), 2: ("value", "b")}
META: Schema = {
    1: ("name", "s"),
    2: ("generateName", "s"),
    3: ("namespace", "s"),
    11: ("labels", "ms"),
    12: ("annotations", "ms"),
}
INT_OR_STRING: Schema = {1: ("type", "i"), 2: ("intVal", "i"), 3: ("strVal", "s")}
CONTAINER_PORT: Schema = {
    1: ("name", "s"),
    2: ("hostPort", "i"),
    3: ("containerPort", "i"),
    4: ("protocol", "s"),
}
CONTAINER: Schema = {
    1: ("name", "s"),
    2: ("image", "s"),
    3: ("command", ("r", "s")),
    4: ("args", ("r", "s")),
    5: ("workingDir", "s"),
    6: ("ports", ("r", CONTAINER_PORT)),
}
POD_SPEC: Schema = {2: ("containers", ("r", CONTAINER))}
SERVICE_PORT: Schema = {
    1: ("name", "s"),
    2: ("protocol", "s"),
    3: ("port", "i"),
    4: ("targetPort", "ios"),
    5: ("nodePort", "i"),
}

RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "s"),
    2: ("verb", "s"),
    3: ("group", "s"),
    4: ("version", "s"),
    5: ("resource", "s"),
    6: ("subresource", "s"),
    7: ("name", "s"),
}
NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", "s"), 2: ("verb", "s")}
ACCESS_REVIEW_SPEC: Schema = {  # SubjectAccessReviewSpec; the self review's spec is its first two fields
    1: ("resourceAttributes", RESOURCE_ATTRIBUTES),
    2: ("nonResourceAttributes", NON_RESOURCE_ATTRIBUTES),
    3: ("user", "s"),
    4: ("groups", ("r", "s")),
    6: ("uid", "s"),
}

KINDS: dict[str, Schema] = {
    "Namespace": {1: ("metadata", META), 2: ("spec", {1: ("finalizers", ("r", "s"))})},
    "Secret": {
        1: ("metadata", META),
        2: ("data", "mb"),
        3: ("type", "s"),
        4: ("stringData", "ms"),
        5: ("immutable", "?"),
    },
    "ConfigMap": {1: ("metadata", META), 2: ("data", "ms"), 3: ("binaryData", "mb"), 4: ("immutable", "?")},
    "ServiceAccount": {
        1: ("metadata", META),
        3: ("imagePullSecrets", ("r", {1: ("name", "s")})),
        4: ("automountServiceAccountToken", "?"),
    },
    "TokenRequest": {
        1: ("metadata", META),
        2: ("spec", {1: ("audiences", ("r", "s")), 4: ("expirationSeconds", "i")}),
    },
    "SelfSubjectAccessReview": {1: ("metadata", META), 2: ("spec", ACCESS_REVIEW_SPEC)},
    "SubjectAccessReview": {1: ("metadata", META), 2: ("spec", ACCESS_REVIEW_SPEC)},
    "Deployment": {
        1: ("metadata", META),
        2: (
            "spec",
            {
                1: ("replicas", "i"),
                2: ("selector", {1: ("matchLabels", "ms")}),
                3: ("template", {1: ("metadata", META), 2: ("spec", POD_SPEC)}),
                4: ("strategy", {1: ("type", "s")}),
            },
        ),
    },
    "Service": {
        1: ("metadata", META),
        2: (
            "spec",
            {
                1: ("ports", ("r", SERVICE_PORT)),
                2: ("selector", "ms"),
                3: ("clusterIP", "s"),
                4: ("type", "s"),
            },
        ),
    },
}


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            out.append((number, value))
        elif wire == 2:
            size, i = _varint(data, i)
            out.append((number, data[i : i + size]))
            i += size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _scalar(kind: str, raw: int | bytes) -> Any:
    if kind == "s":
        return raw.decode() if isinstance(raw, bytes) else str(raw)
    if kind == "b":
        return base64.b64encode(raw if isinstance(raw, bytes) else b"").decode()
    if kind == "?":
        return bool(raw)
    return raw if isinstance(raw, int) else int.from_bytes(raw, "little")


def _message(schema: Schema, data: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, raw in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if isinstance(kind, tuple):  # repeated
            item = kind[1]
            value = (
                _message(item, raw)
                if isinstance(item, dict) and isinstance(raw, bytes)
                else _scalar(item, raw)
            )
            out.setdefault(name, []).append(value)
        elif kind in ("ms", "mb") and isinstance(raw, bytes):
            entry = _message(MAP if kind == "ms" else BYTES_MAP, raw)
            out.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        elif kind == "ios" and isinstance(raw, bytes):
            value = _message(INT_OR_STRING, raw)
            out[name] = value.get("strVal") if value.get("type") == 1 else value.get("intVal", 0)
        elif isinstance(kind, dict) and isinstance(raw, bytes):
            out[name] = _message(kind, raw)
        else:
            out[name] = _scalar(kind, raw)
    return {k: v for k, v in out.items() if v not in ("", 0, False, {}, [], None)}


def decode(body: bytes) -> dict[str, Any]:
    """A JSON-shaped object from a protobuf request body (runtime.Unknown envelope)."""
    if not body.startswith(MAGIC):
        raise KubeError(400, "protobuf body without the k8s envelope")
    try:
        envelope = _message(
            {1: ("typeMeta", {1: ("apiVersion", "s"), 2: ("kind", "s")}), 2: ("raw", "b")}, body[4:]
        )
        meta = envelope.get("typeMeta") or {}
        kind = meta.get("kind", "")
        if kind not in KINDS:
            supported = ", ".join(KINDS)
            raise KubeError(
                415,
                f"the meshwright sandbox decodes protobuf only for {supported}; use kubectl apply (JSON) for {kind}",
            )
        obj = _message(KINDS[kind], base64.b64decode(envelope.get("raw", "")))
    except ValueError as e:
        raise KubeError(400, f"cannot decode the protobuf body: {e}") from None
    return {"apiVersion": meta.get("apiVersion"), "kind": kind, **obj}
