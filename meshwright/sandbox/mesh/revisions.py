"""Istio revisions as the data plane sees them: which istiod a proxy belongs to. Pure.

A cluster may run several istiod revisions at once (Istio's canary upgrade: istio/istio
manifests/charts/istio-control/istio-discovery, `revision`); each is a control plane of its own,
with its own Service `istiod-<revision>` (`istiod` for the default revision), its own injector and
its own clusterz. A pod belongs to the revision whose istiod injected it, which the injector writes
on the pod.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from meshwright.sandbox import dotted
from meshwright.sandbox.mesh.istiod import DEFAULT_REVISION, REVISION_LABEL

REVISION = REVISION_LABEL  # an injected pod's annotation (and a namespace's or pod's label)
__all__ = ["DEFAULT_REVISION", "REVISION", "ControlPlane", "revision_of", "service_name"]


@dataclass(frozen=True)
class ControlPlane:
    """One istiod revision: the cluster it runs in and the revision it serves."""

    cluster: str
    revision: str = DEFAULT_REVISION

    @property
    def service(self) -> str:
        """Its Service in istio-system, and a remote's for it (Istio's charts: istiod[-<revision>])."""
        return service_name(self.revision)

    def __str__(self) -> str:
        return f"{self.cluster}'s {self.service}"


def service_name(revision: str) -> str:
    return "istiod" if revision == DEFAULT_REVISION else f"istiod-{revision}"


def revision_of(pod: dict[str, Any]) -> str:
    """The revision whose istiod injected the pod: the `istio.io/rev` annotation of Istio's injection
    template (istio-discovery/files/injection-template.yaml), else the `revision` of
    `sidecar.istio.io/status` (pkg/kube/inject/webhook.go getInjectionStatus), else "default"."""
    annotations = dotted.get(pod, "metadata.annotations", {}) or {}
    if annotations.get(REVISION):
        return str(annotations[REVISION])
    try:
        status = json.loads(annotations.get("sidecar.istio.io/status") or "{}")
    except ValueError:
        status = {}
    revision = status.get("revision") if isinstance(status, dict) else None
    return str(revision) if revision else DEFAULT_REVISION
