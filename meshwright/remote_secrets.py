"""Remote secrets, as `istioctl create-remote-secret` makes them: pure documents, no I/O.

A primary's istiod reaches another cluster with a kubeconfig that holds the reader service
account's long-lived token. This module decides which cluster's secret goes into which primary
and builds the objects; the tasks read the token and write the secret in one task run, so the
token never leaves it. Fingerprints (a short SHA-256) are what may be returned or logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import yaml

from meshwright import naming
from meshwright.spec import MeshSpec

SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
# What a primary's istiod lists and watches, at cluster scope, on each cluster it reads through a
# remote secret: its service registry's informers (istio/istio pilot/pkg/serviceregistry/kube/
# controller: Services, EndpointSlices, Pods, Nodes; Namespaces for discovery selectors and the
# namespace controller). Istio's reader ClusterRole (istio-reader-clusterrole-<ns>) grants them.
INFORMED: tuple[tuple[str, str], ...] = (
    ("", "namespaces"),
    ("", "services"),
    ("discovery.k8s.io", "endpointslices"),
    ("", "pods"),
    ("", "nodes"),
)


SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
READER_TOKEN_LABEL = "meshwright.io/reader-token"  # a token Secret made by a rotation


def pairs(spec: MeshSpec) -> list[tuple[str, str]]:
    """(source, primary): the source's secret goes into that primary.

    Every primary reads every other cluster of the mesh (Istio's own rule: each cluster's secret goes
    into every primary other than itself). Primary-remote gives each remote into its primary;
    multi-primary gives each primary into every other primary.
    """
    return [
        (source.name, primary.name)
        for primary in spec.primaries
        for source in spec.clusters
        if source.name != primary.name
    ]


def reader_token_secret(name: str = naming.READER_TOKEN_SECRET) -> dict[str, Any]:
    """The long-lived token Secret istioctl creates for the reader SA (Kubernetes >= 1.24 makes none);
    a rotated one (any other `name`) is labelled so that later runs find it (`current_reader_token`)."""
    labels = {} if name == naming.READER_TOKEN_SECRET else {READER_TOKEN_LABEL: "true"}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SA_TOKEN_TYPE,
        "metadata": {
            "name": name,
            "namespace": naming.ISTIO_NAMESPACE,
            "annotations": {SA_NAME_ANNOTATION: naming.READER_SERVICE_ACCOUNT},
            **({"labels": labels} if labels else {}),
        },
    }


def rotated_token_name(now: float) -> str:
    """A new token Secret's name for a rotation: istioctl's name and the time, in hex seconds."""
    return f"{naming.READER_TOKEN_SECRET}-{int(now):x}"


def current_reader_token(rotated: list[dict[str, Any]]) -> str:
    """The token Secret the mesh's remote secrets are made from: the newest rotated one (metadata of
    the Secrets labelled READER_TOKEN_LABEL), else istioctl's own name."""
    newest = max(rotated, key=lambda m: (m.get("creationTimestamp") or "", m.get("name") or ""), default=None)
    return str(newest["name"]) if newest else naming.READER_TOKEN_SECRET


def render(config: dict[str, Any]) -> bytes:
    """Stable bytes for a kubeconfig: the same inputs give the same secret, so a rerun changes nothing."""
    return yaml.safe_dump(config, sort_keys=True).encode()


def remote_secret(cluster: str, kubeconfig_bytes: bytes) -> dict[str, Any]:
    """Secret `istio-remote-secret-<cluster>` for a primary's istio-system."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": naming.remote_secret_name(cluster),
            "namespace": naming.ISTIO_NAMESPACE,
            "labels": {naming.REMOTE_SECRET_LABEL: "true"},
            "annotations": {naming.REMOTE_SECRET_ANNOTATION: cluster},
        },
        "data": {cluster: base64.b64encode(kubeconfig_bytes).decode()},
    }


def cluster_of(metadata: dict[str, Any]) -> str:
    """The cluster a remote secret is for: Istio's annotation, else the name's suffix."""
    named = (metadata.get("annotations") or {}).get(naming.REMOTE_SECRET_ANNOTATION)
    return str(named or str(metadata.get("name", "")).removeprefix(naming.remote_secret_name("")))


def same_secret(existing: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """True when the stored secret already says what we would write (data, label, annotation)."""
    return existing is not None and _compared(existing) == _compared(wanted)


def content_digest(secret: dict[str, Any]) -> str:
    """A digest of what `same_secret` compares: two secrets with equal digests are the same secret
    to istiod. Holds nothing of the token."""
    return hashlib.sha256(json.dumps(_compared(secret), sort_keys=True).encode()).hexdigest()


def _compared(secret: dict[str, Any]) -> list[Any]:
    """What makes a remote secret the same to istiod: its data, the label it is found by, the
    cluster annotation."""
    meta = secret.get("metadata") or {}
    return [
        secret.get("data") or {},
        (meta.get("labels") or {}).get(naming.REMOTE_SECRET_LABEL) == "true",
        (meta.get("annotations") or {}).get(naming.REMOTE_SECRET_ANNOTATION),
    ]


def fingerprint(data: bytes) -> str:
    """A short SHA-256: tells two versions apart without revealing what they hold."""
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def token_of(secret: dict[str, Any]) -> str | None:
    """The token of a filled service-account-token Secret (as read with `_preload_content=False`)."""
    data = secret.get("data") or {}
    return base64.b64decode(data["token"]).decode() if data.get("token") else None
