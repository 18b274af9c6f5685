"""istiod's monitoring port (15014) behind the Kubernetes API's service proxy: `/debug/clusterz`.

The fleet calls a service-proxy backend as `(cluster_id, namespace, "name:port", path, request)`;
this one answers for a Service whose selector picks a ready istiod Deployment and whose port leads
to 15014, from the `IstiodModel`. Anything else is not ours: None, and the API server says that no
endpoint backs the Service, as a real one does when nothing listens.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from meshwright.sandbox.http import Request, Response
from meshwright.sandbox.mesh import probe
from meshwright.sandbox.mesh.istiod import ClusterObjects, Istiod, IstiodModel, istiods

log = logging.getLogger(__name__)
MONITORING_PORT = 15014
Lookup = Callable[[str], ClusterObjects | None]


def _service(objects: ClusterObjects, namespace: str, name: str) -> dict[str, Any] | None:
    return next((s for s in objects.list("/services", namespace) if s["metadata"]["name"] == name), None)


def _reaches_monitoring(service: dict[str, Any], port: str) -> bool:
    """Does `port` (number, name or empty) of the Service lead to istiod's 15014?"""
    ports = (service.get("spec") or {}).get("ports") or []
    if not port:
        chosen = ports[:1]
    else:
        chosen = [p for p in ports if str(p.get("port")) == port or p.get("name") == port]
    return any(p.get("targetPort", p.get("port")) in (MONITORING_PORT, str(MONITORING_PORT)) for p in chosen)


def _backing(service: dict[str, Any], candidates: list[Istiod]) -> Istiod | None:
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return None
    return next((i for i in candidates if all(i.pod_labels.get(k) == v for k, v in selector.items())), None)


class ClusterzProxy:
    """The service-proxy backend that serves the emulated istiods' debug endpoints."""

    def __init__(self, lookup: Lookup, model: IstiodModel | None = None) -> None:
        self.lookup = lookup
        self.model = model or IstiodModel(probe.probe)

    def __call__(
        self, cluster_id: str, namespace: str, service: str, path: str, request: Request
    ) -> Response | None:
        objects = self.lookup(cluster_id)
        if objects is None:
            return None
        name, _, port = service.partition(":")
        svc = _service(objects, namespace, name)
        if svc is None or not _reaches_monitoring(svc, port):
            return None
        istiod = _backing(svc, istiods(objects) if namespace == "istio-system" else [])
        if istiod is None:
            return None
        if request.method != "GET":
            return Response(405, b"Method Not Allowed\n", {"Content-Type": "text/plain; charset=utf-8"})
        if path.strip("/") != "debug/clusterz":
            return Response(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"})
        entries = self.model.clusterz(cluster_id, objects, istiod)
        for cid, reason in self.model.reasons(cluster_id, istiod).items():
            log.info(
                "istiod %s in %s: remote cluster %s not synced: %s", istiod.name, cluster_id, cid, reason
            )
        pretty = "pretty" in request.query
        body = json.dumps(entries, indent=4 if pretty else None, separators=None if pretty else (",", ":"))
        return Response(200, body.encode(), {"Content-Type": "application/json"})


def for_fleet(fleet: Any) -> ClusterzProxy:
    """The backend over a running fleet: a cluster's objects are its API's object store."""

    def lookup(cluster_id: str) -> ClusterObjects | None:
        running = fleet.running_apis.get(cluster_id)
        return running.cluster.store if running is not None else None

    return ClusterzProxy(lookup)
