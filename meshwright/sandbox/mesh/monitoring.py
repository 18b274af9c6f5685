"""What istiod's monitoring port (15014) answers, and to whom: `/metrics` to anyone, `/debug/*` to local callers.

istio/istio `pilot/pkg/xds/debug.go` registers every debug handler behind `allowAuthenticatedOrLocalhost`:
a caller from a loopback address is served; anyone else needs a token one of istiod's authenticators
accepts, and without one gets `401` with an empty body (`w.WriteHeader(http.StatusUnauthorized)`; "not
including detailed info in the response"). The API server's service proxy drops the caller's
`Authorization` header, so through it every debug endpoint is 401; a port-forward arrives from the
pod's own loopback (containerd dials localhost inside the pod's network namespace) and is served.
`/metrics` has no such wrapper: Prometheus scrapes it.

Served from the `IstiodModel`: `/debug/clusterz` (the same JSON as istioctl reads) and `/metrics` with
`istiod_managed_clusters` and the `istiod_remote_cluster_sync_status` gauge (Istio >= 1.29, defined
in istio/istio `pkg/kube/multicluster/secretcontroller.go`: labels `cluster`, `cluster_type="remote"`
and `status`, one sample per remote cluster and status, 1 for the current one). Real istiod refreshes
that gauge every 15 s; the model answers with the status of the moment. The other debug endpoints
exist (401 when not local) but are not modelled (404 when local); `/debug/syncz` needs connected
proxies, which the sandbox's data plane does not model as xDS clients.
"""

from __future__ import annotations

import json
import logging

from meshwright.sandbox.mesh.http1 import HttpAnswer, HttpRequest
from meshwright.sandbox.mesh.istiod import (
    CLOSED,
    SYNCED,
    SYNCING,
    TIMEOUT,
    ClusterObjects,
    Istiod,
    IstiodModel,
)

log = logging.getLogger(__name__)
PORT = 15014
DEBUG_PATHS = frozenset(
    f"/debug/{name}"
    for name in [
        "ecdsz",
        "edsz",
        "ndsz",
        "adsz",
        "syncz",
        "config_distribution",
        "registryz",
        "endpointz",
        "endpointShardz",
        "cachez",
        "configz",
        "sidecarz",
        "resourcesz",
        "instancesz",
        "authorizationz",
        "telemetryz",
        "config_dump",
        "push_status",
        "pushcontext",
        "connections",
        "inject",
        "mesh",
        "clusterz",
        "networkz",
        "mcsz",
        "list",
    ]
)
"""The handlers debug.go registers with `addDebugHandler` (all behind allowAuthenticatedOrLocalhost)."""
TEXT = {"Content-Type": "text/plain; charset=utf-8"}
PROMETHEUS = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
NOT_FOUND = HttpAnswer(404, b"404 page not found\n", TEXT)
SYNC_HELP = (
    "Current synchronization state of remote clusters managed by istiod. "
    "One sample per cluster and state; a value of 1 indicates the cluster is in that state."
)


class Monitoring:
    """istiod's port 15014 over the model: one answer per request, given who is asking."""

    def __init__(self, model: IstiodModel) -> None:
        self.model = model

    def answer(
        self, request: HttpRequest, *, cluster: str, objects: ClusterObjects, istiod: Istiod, local: bool
    ) -> HttpAnswer:
        path = request.path.rstrip("/") or "/"
        if path in DEBUG_PATHS and not local:
            return HttpAnswer(401)  # allowAuthenticatedOrLocalhost: no valid token, not from loopback
        if request.method not in ("GET", "HEAD"):
            return HttpAnswer(405, b"Method Not Allowed\n", TEXT)
        if path == "/debug/clusterz":
            return self._clusterz(request, cluster, objects, istiod)
        if path == "/metrics":
            return HttpAnswer(200, self.metrics(cluster, objects, istiod).encode(), PROMETHEUS)
        return NOT_FOUND

    def _clusterz(
        self, request: HttpRequest, cluster: str, objects: ClusterObjects, istiod: Istiod
    ) -> HttpAnswer:
        entries = self.model.clusterz(cluster, objects, istiod)
        for cid, reason in self.model.reasons(cluster, istiod).items():
            log.info("istiod %s in %s: remote cluster %s not synced: %s", istiod.name, cluster, cid, reason)
        pretty = "pretty" in request.query
        body = json.dumps(entries, indent=4 if pretty else None, separators=None if pretty else (",", ":"))
        return HttpAnswer(200, body.encode(), {"Content-Type": "application/json"})

    def metrics(self, cluster: str, objects: ClusterObjects, istiod: Istiod) -> str:
        """The Prometheus text exposition of the multicluster gauges, from the same model as clusterz."""
        remotes = self.model.clusterz(cluster, objects, istiod)[1:]
        lines = [
            "# HELP istiod_managed_clusters Number of clusters managed by istiod",
            "# TYPE istiod_managed_clusters gauge",
            'istiod_managed_clusters{cluster_type="local"} 1',
            f'istiod_managed_clusters{{cluster_type="remote"}} {len(remotes)}',
            f"# HELP istiod_remote_cluster_sync_status {SYNC_HELP}",
            "# TYPE istiod_remote_cluster_sync_status gauge",
        ]
        for entry in sorted(remotes, key=lambda e: e["id"]):
            for status in sorted((CLOSED, SYNCED, SYNCING, TIMEOUT)):
                labels = f'cluster="{_escape(entry["id"])}",cluster_type="remote",status="{status}"'
                lines.append(
                    f"istiod_remote_cluster_sync_status{{{labels}}} {int(entry['syncStatus'] == status)}"
                )
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    """A label value in the text exposition format: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
