"""What the Bookinfo sample is made of, and its manifests per cluster of a mesh. Pure: no I/O.

The workloads, services and calls are Istio's samples/bookinfo (platform/kube/bookinfo.yaml and
networking/bookinfo-gateway.yaml). Split across clusters, two rules of Istio multicluster shape the
manifests: a caller resolves `reviews` only if the Service exists in its own cluster, so the four
Services go to every cluster; and the namespace carries `istio-injection=enabled` so each pod gets
its sidecar. A PeerAuthentication `default` (STRICT unless `bookinfo.mtls` says PERMISSIVE) goes to
every cluster with the namespace: a remote's proxies take it from their primary's istiod, which
reads its own cluster, and the copy in the remote keeps the namespace whole if it becomes a primary.
Deployments go where `bookinfo.placement` says. `reviews` gets `CLUSTER_NAME` (then its JSON names
the cluster that served it) and, explicitly, the ratings switch and star colour its
image versions are built with. The ingress gateway (Istio's `gateway` chart) goes to the cluster(s)
running productpage, Bookinfo's own Gateway and VirtualService to their config cluster (the
primary of a remote).

The spec validates placements against the catalogue (meshwright.bookinfo_catalog); nothing here
reads a cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meshwright import naming
from meshwright.bookinfo_catalog import ENTRYPOINT, SERVICES, WORKLOADS, Workload

if TYPE_CHECKING:
    from meshwright.spec import MeshSpec


PORT = 9080
IMAGE_TAG = "1.20.3"
GATEWAY = "bookinfo-gateway"
VIRTUAL_SERVICE = "bookinfo"
GATEWAY_SELECTOR = {"istio": "ingressgateway"}
GATEWAY_PORT = (
    80  # istio/gateway's Service maps 80 -> 80 (samples' 8080 fits istioctl's gateway only: istio#50693)
)
STAR_COLORS = {"v2": "black", "v3": "red"}
INJECTION_LABEL = "istio-injection"
PEER_AUTHENTICATION = "default"  # the name Istio's docs give a namespace-wide policy
ROUTES: tuple[tuple[str, str], ...] = (
    ("exact", "/productpage"),
    ("prefix", "/static"),
    ("exact", "/login"),
    ("exact", "/logout"),
    ("prefix", "/api/v1/products"),
)


def image(workload: Workload, istio_version: str) -> str:
    """Istio's samples moved from docker.io/istio to registry.istio.io/release with 1.30."""
    major, minor = (int(p) for p in istio_version.split(".")[:2])
    registry = "registry.istio.io/release" if (major, minor) >= (1, 30) else "docker.io/istio"
    return f"{registry}/examples-bookinfo-{workload.service}-{workload.version}:{IMAGE_TAG}"


def placed(spec: MeshSpec, cluster: str) -> list[Workload]:
    """The workloads the spec runs in `cluster`, in Bookinfo's order."""
    names = set(spec.bookinfo.placement.get(cluster, [])) if spec.bookinfo else set()
    return [w for n, w in WORKLOADS.items() if n in names]


def entry_clusters(spec: MeshSpec) -> list[str]:
    """The clusters running productpage: each gets an ingress gateway."""
    return [c.name for c in spec.clusters if any(w.name == ENTRYPOINT for w in placed(spec, c.name))]


def config_clusters(spec: MeshSpec) -> list[str]:
    """Where the Gateway and VirtualService go: the config cluster of each ingress gateway (its
    primary for a remote: istiod reads Istio's configuration from its own cluster only)."""
    return sorted({spec.cluster(e).primary or e for e in entry_clusters(spec)})


def reviews_placement(spec: MeshSpec) -> dict[str, list[str]]:
    """cluster -> reviews versions placed there (what the traffic check expects to see answer)."""
    found = {
        c.name: [w.version for w in placed(spec, c.name) if w.service == "reviews"] for c in spec.clusters
    }
    return {c: v for c, v in found.items() if v}


def namespace(spec: MeshSpec) -> dict[str, Any]:
    assert spec.bookinfo is not None
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": spec.bookinfo.namespace, "labels": {INJECTION_LABEL: "enabled"}},
    }


def service(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name, "service": name}},
        "spec": {"ports": [{"port": PORT, "name": "http"}], "selector": {"app": name}},
    }


def service_account(name: str, namespace: str) -> dict[str, Any]:
    labels = {"account": name}
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": f"bookinfo-{name}", "namespace": namespace, "labels": labels},
    }


def _env(workload: Workload, cluster: str) -> list[dict[str, str]]:
    if workload.service != "reviews":
        return []
    env = [
        {"name": "LOG_DIR", "value": "/tmp/logs"},
        {"name": "CLUSTER_NAME", "value": cluster},
        {"name": "ENABLE_RATINGS", "value": "true" if workload.version in STAR_COLORS else "false"},
    ]
    if workload.version in STAR_COLORS:
        env.append({"name": "STAR_COLOR", "value": STAR_COLORS[workload.version]})
    return env


def deployment(workload: Workload, namespace: str, *, cluster: str, istio_version: str) -> dict[str, Any]:
    labels = {"app": workload.service, "version": workload.version}
    container: dict[str, Any] = {
        "name": workload.service,
        "image": image(workload, istio_version),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": PORT}],
    }
    if env := _env(workload, cluster):
        container["env"] = env
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": workload.name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"serviceAccountName": f"bookinfo-{workload.service}", "containers": [container]},
            },
        },
    }


def gateway(namespace: str) -> dict[str, Any]:
    """bookinfo-gateway.yaml's Gateway, any host, HTTP on port 80: the helm-installed gateway's Service
    sends 80 to the pods' 80 (istiod maps a Gateway port equal to a Service port to its targetPort)."""
    server = {"port": {"number": GATEWAY_PORT, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": namespace},
        "spec": {"selector": dict(GATEWAY_SELECTOR), "servers": [server]},
    }


def virtual_service(namespace: str) -> dict[str, Any]:
    """bookinfo-gateway.yaml's VirtualService: productpage's paths to productpage:9080."""
    match = [{"uri": {kind: path}} for kind, path in ROUTES]
    route = [{"destination": {"host": "productpage", "port": {"number": PORT}}}]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": VIRTUAL_SERVICE, "namespace": namespace},
        "spec": {"hosts": ["*"], "gateways": [GATEWAY], "http": [{"match": match, "route": route}]},
    }


def peer_authentication(namespace: str, mode: str) -> dict[str, Any]:
    """The namespace-wide PeerAuthentication (no selector): with STRICT, the namespace's proxies take
    only mTLS, so a caller without a sidecar is refused (istio.io, "Mutual TLS Migration")."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": PEER_AUTHENTICATION, "namespace": namespace},
        "spec": {"mtls": {"mode": mode}},
    }


def ingress_values() -> dict[str, Any]:
    """Values of the `gateway` chart for release istio-ingressgateway: its defaults (labels
    app=istio-ingressgateway, istio=ingressgateway; a LoadBalancer on 15021, 80 and 443)."""
    return {"name": naming.INGRESS_RELEASE}


def manifests(spec: MeshSpec, cluster: str) -> list[dict[str, Any]]:
    """Everything Bookinfo needs in `cluster`, in apply order (the ingress chart is installed apart)."""
    assert spec.bookinfo is not None, "the spec has no bookinfo section"
    ns = spec.bookinfo.namespace
    items = [namespace(spec), peer_authentication(ns, spec.bookinfo.mtls.value)]
    items += [service(s, ns) for s in SERVICES]
    workloads = placed(spec, cluster)
    items += [service_account(s, ns) for s in dict.fromkeys(w.service for w in workloads)]
    items += [deployment(w, ns, cluster=cluster, istio_version=spec.istio.version) for w in workloads]
    if cluster in config_clusters(spec):
        items += [gateway(ns), virtual_service(ns)]
    return items
