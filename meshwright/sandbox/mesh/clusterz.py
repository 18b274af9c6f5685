"""istiod's monitoring port (15014) behind the Kubernetes API's service proxy, as a remote caller sees it.

The fleet calls a service-proxy backend as `(cluster_id, namespace, "name:port", path, request)`;
this one answers for a Service whose selector picks a ready istiod Deployment and whose port leads
to 15014. Anything else is not ours: None, and the API server says that no endpoint backs the
Service, as a real one does when nothing listens.

The API server does not pass the caller's credentials on, so istiod sees a caller that is neither
local nor authenticated: `/debug/*` is 401, `/metrics` is served (see `monitoring.py`). A local
caller reaches the same port through `pods/portforward` (`forward.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshwright.sandbox.http import Request, Response
from meshwright.sandbox.mesh import probe
from meshwright.sandbox.mesh.http1 import HttpRequest
from meshwright.sandbox.mesh.istiod import ClusterObjects, Istiod, IstiodModel, istiods
from meshwright.sandbox.mesh.monitoring import PORT, Monitoring

MONITORING_PORT = PORT
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
    """The service-proxy backend for the emulated istiods' monitoring port (a remote, unauthenticated caller)."""

    def __init__(self, lookup: Lookup, model: IstiodModel | None = None) -> None:
        self.lookup = lookup
        self.model = model or IstiodModel(probe.probe)
        self.monitoring = Monitoring(self.model)

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
        asked = HttpRequest(
            request.method, "/" + path.lstrip("/"), request.query, request.headers, request.body
        )
        answer = self.monitoring.answer(
            asked, cluster=cluster_id, objects=objects, istiod=istiod, local=False
        )
        headers = answer.headers or {"Content-Type": "text/plain; charset=utf-8"}
        return Response(answer.status, answer.body, headers)


def for_fleet(fleet: Any) -> ClusterzProxy:
    """The backend over a running fleet: a cluster's objects are its API's object store."""

    def lookup(cluster_id: str) -> ClusterObjects | None:
        running = fleet.running_apis.get(cluster_id)
        return running.cluster.store if running is not None else None

    return ClusterzProxy(lookup)
