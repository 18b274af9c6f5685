"""istiod's monitoring port through `pods/{name}/portforward`: the caller is local to istiod.

The fleet calls a port-forward backend as `(cluster_id, namespace, pod, port)`; this one connects
when the pod belongs to a ready istiod Deployment (istio-system, the Deployment's pod-template labels;
the same istiods `clusterz.py` recognises) and the port is 15014. The connection speaks HTTP/1.1 and
istiod sees a loopback caller, so `/debug/clusterz` is served (istio/istio `pilot/pkg/xds/debug.go`,
`isRequestFromLocalhost`); this is how `istioctl remote-clusters` reads it (istio/istio
`pkg/kube/client.go`, a port-forward to the istiod pod). Anything else: None, and the kubelet reports
a refused connection on the error channel.
"""

from __future__ import annotations

from typing import Any

from meshwright.sandbox import dotted
from meshwright.sandbox.mesh.clusterz import ClusterzProxy, Lookup
from meshwright.sandbox.mesh.http1 import HttpAnswer, HttpRequest, HttpStream
from meshwright.sandbox.mesh.istiod import NAMESPACE, ClusterObjects, Istiod, istiods
from meshwright.sandbox.mesh.monitoring import PORT, Monitoring


def _pod(objects: ClusterObjects, namespace: str, name: str) -> dict[str, Any] | None:
    return next((p for p in objects.list("/pods", namespace) if p["metadata"]["name"] == name), None)


def _owner(pod: dict[str, Any], candidates: list[Istiod]) -> Istiod | None:
    """The ready istiod whose pod template labels the pod carries."""
    labels = dotted.get(pod, "metadata.labels", {}) or {}
    return next(
        (i for i in candidates if i.pod_labels and all(labels.get(k) == v for k, v in i.pod_labels.items())),
        None,
    )


class IstiodForward:
    """The port-forward backend: a local HTTP connection to an emulated istiod's 15014."""

    def __init__(self, lookup: Lookup, monitoring: Monitoring) -> None:
        self.lookup, self.monitoring = lookup, monitoring

    def __call__(self, cluster_id: str, namespace: str, pod: str, port: int) -> HttpStream | None:
        objects = self.lookup(cluster_id)
        if objects is None or namespace != NAMESPACE or port != PORT:
            return None
        found = _pod(objects, namespace, pod)
        istiod = _owner(found, istiods(objects)) if found is not None else None
        if istiod is None:
            return None

        def app(request: HttpRequest) -> HttpAnswer:
            return self.monitoring.answer(
                request, cluster=cluster_id, objects=objects, istiod=istiod, local=True
            )

        return HttpStream(app)


def beside(proxy: ClusterzProxy) -> IstiodForward:
    """The port-forward backend over the same clusters and the same istiod model as the service proxy's."""
    return IstiodForward(proxy.lookup, proxy.monitoring)
