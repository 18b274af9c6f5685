"""What helm stored about the releases of one namespace, read from helm's own storage Secrets.

Helm 3's default storage driver keeps each revision of a release as a Secret
`sh.helm.release.v1.<name>.v<revision>` labelled owner=helm, name, status and version, whose
`data.release` is base64(gzip(JSON of the release)) (helm/helm pkg/storage/driver/secrets.go
newSecretsObject, util.go encodeRelease/decodeRelease); the Kubernetes API base64-encodes that data
once more. One list of those Secrets answers what `helm get metadata`, `helm get values` and `helm
get manifest` answer, for every release of the namespace, without a helm process each; helm's own
`Last` (storage.go) is the highest revision of a name, as `latest` here.

Helm keeps releases in Secrets only when HELM_DRIVER is unset or `secret(s)` (pkg/action/action.go,
Configuration.Init); otherwise `in_secrets()` is False and callers ask helm. This module only reads:
it never writes helm's storage. A manifest may hold a Secret's data: it is never logged or repr'd.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
from kubernetes.client.api.core_v1_api import CoreV1Api

from meshwright.translate import kube_call

SECRET_DRIVERS = ("", "secret", "secrets")
SELECTOR = "owner=helm"
_GZIP = b"\x1f\x8b\x08"
# `helm list`'s default state mask (pkg/action/list.go, NewList: ListDeployed | ListFailed)
LISTED = ("deployed", "failed")
_FRACTION = re.compile(r"(?<=:\d\d)\.\d+")


def in_secrets() -> bool:
    """Whether the helm that runs here keeps its releases in Secrets (HELM_DRIVER, as helm reads it)."""
    return os.environ.get("HELM_DRIVER", "") in SECRET_DRIVERS


@dataclass(frozen=True)
class StoredRelease:
    """One revision of a release as helm stored it."""

    name: str
    revision: int
    status: str
    chart: str
    version: str
    app_version: str
    deployed_at: str
    config: dict[str, Any]
    manifest: str = field(repr=False)

    def metadata(self) -> dict[str, Any]:
        """The fields of `helm get metadata -o json` that meshwright reads."""
        return {
            "name": self.name,
            "chart": self.chart,
            "version": self.version,
            "appVersion": self.app_version,
            "revision": self.revision,
            "status": self.status,
            "deployedAt": _FRACTION.sub("", self.deployed_at, count=1),  # helm prints RFC 3339 seconds
        }


def decode(data: str) -> dict[str, Any]:
    """A release from a storage Secret's `data.release` as the Kubernetes API returns it (base64 of
    helm's base64 of gzip of JSON; helm reads releases stored before compression without gzip)."""
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:3] == _GZIP:
        raw = gzip.decompress(raw)
    return dict(json.loads(raw))


def release(doc: dict[str, Any]) -> StoredRelease:
    """The fields meshwright reads from a decoded release (helm's pkg/release Release JSON)."""
    meta, info = (doc.get("chart") or {}).get("metadata") or {}, doc.get("info") or {}
    return StoredRelease(
        name=str(doc["name"]),
        revision=int(doc["version"]),
        status=str(info.get("status", "")),
        chart=str(meta.get("name", "")),
        version=str(meta.get("version", "")),
        app_version=str(meta.get("appVersion", "")),
        deployed_at=str(info.get("last_deployed", "")),
        config=dict(doc.get("config") or {}),
        manifest=str(doc.get("manifest", "")),
    )


@dataclass(frozen=True)
class _Revision:
    revision: int
    status: str  # the `status` label helm sets from the release's info.status
    data: str = field(repr=False)


class Stored:
    """The storage Secrets of one namespace by release name, each decoded only when asked for."""

    def __init__(self, secrets: Iterable[kubernetes.client.V1Secret]) -> None:
        self._revisions: dict[str, list[_Revision]] = {}
        for secret in secrets:
            labels, data = (secret.metadata and secret.metadata.labels) or {}, secret.data or {}
            if "name" in labels and str(labels.get("version", "")).isdigit() and "release" in data:
                found = _Revision(int(labels["version"]), str(labels.get("status", "")), str(data["release"]))
                self._revisions.setdefault(labels["name"], []).append(found)

    def latest(self, name: str) -> StoredRelease | None:
        """The release's highest revision (what `helm get` reads), or None when helm stored no
        Secret for it or its Secret cannot be decoded: the caller then asks helm."""
        revisions = self._revisions.get(name)
        return _decoded(max(revisions, key=lambda r: r.revision)) if revisions else None

    def holds(self, name: str) -> bool:
        """Whether helm stored any revision of the release: without one, there is no such release
        (helm's `get` and `history` answer "release: not found" from the same Secrets)."""
        return name in self._revisions

    def listed(self) -> list[StoredRelease] | None:
        """What `helm list` shows (per name, the highest deployed or failed revision), or None when a
        Secret cannot be decoded."""
        shown = [
            max(listed, key=lambda r: r.revision)
            for revisions in self._revisions.values()
            if (listed := [r for r in revisions if r.status in LISTED])
        ]
        releases = [_decoded(r) for r in shown]
        return None if None in releases else [r for r in releases if r is not None]


def _decoded(revision: _Revision) -> StoredRelease | None:
    try:
        return release(decode(revision.data))
    except (binascii.Error, OSError, EOFError, ValueError, KeyError, TypeError, AttributeError):
        return None


def read(client: kubernetes.client.ApiClient, namespace: str, *, cluster: str, step: str) -> Stored:
    """One list of the namespace's helm storage Secrets (every revision of every release)."""
    with kube_call(cluster=cluster, step=step, what="helm's release secrets"):
        found = CoreV1Api(client).list_namespaced_secret(namespace, label_selector=SELECTOR)
    return Stored(found.items)


def kept(client: kubernetes.client.ApiClient, namespace: str, *, cluster: str, step: str) -> Stored | None:
    """`read`, or None when the helm here keeps its releases elsewhere (HELM_DRIVER): ask helm then."""
    return read(client, namespace, cluster=cluster, step=step) if in_secrets() else None
