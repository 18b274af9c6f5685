"""Hand-built `Mesh` snapshots: what a healthy meshwright mesh holds, from the product's own manifests.

Istio objects come from meshwright.istio_values (namespace, expose-istiod / expose-services), Bookinfo
from meshwright.bookinfo; what the charts and controllers would add (istiod, gateways, pods with
their injected proxy, load-balancer addresses, endpoint slices) is written here as they render it.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
from typing import Any

from meshwright import bookinfo, istio_values, naming
from meshwright.sandbox.mesh.dataplane import Cluster, Mesh
from meshwright.sandbox.mesh.reachability import Node
from meshwright.sandbox.mesh.revisions import ControlPlane
from meshwright.spec import MeshSpec, validate_spec

ISTIOD_LABELS = {"app": "istiod", "istio": "pilot"}  # the default revision (istio-discovery deployment.yaml)
INGRESS_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
EASTWEST_LABELS = {"app": "istio-eastwestgateway", "istio": "eastwestgateway"}
RUNNING = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}


CENTRAL = {"name": "central", "location": "us-central1-a", "pod_cidr": "10.8.0.0/14"}
WEST = {"name": "west", "location": "us-west1-b", "pod_cidr": "10.16.0.0/14", "primary": "central"}
EAST = {"name": "east", "location": "us-east1-b", "pod_cidr": "10.24.0.0/14", "primary": "central"}
ALPHA = {"name": "alpha", "location": "europe-west4-a", "network": "net-a", "pod_cidr": "10.8.0.0/14"}
BETA = {"name": "beta", "location": "us-east4-c", "network": "net-b", "pod_cidr": "10.16.0.0/14"}


def mesh_spec(
    name: str, clusters: list[dict[str, str]], placement: dict[str, list[str]] | None = None
) -> MeshSpec:
    """A valid spec in project demo-project; with `placement`, a bookinfo section that places the sample so."""
    doc: dict[str, Any] = {"name": name, "project": "demo-project", "clusters": [dict(c) for c in clusters]}
    if placement is not None:
        doc["bookinfo"] = {"placement": placement}
    return validate_spec(doc)


def primary_remote(name: str = "m1") -> MeshSpec:
    """central and its remotes west and east, one network; details-v1 away from productpage, on east."""
    return mesh_spec(
        name,
        [CENTRAL, WEST, EAST],
        {
            "central": ["productpage-v1", "reviews-v1", "reviews-v2", "ratings-v1"],
            "west": ["reviews-v3"],
            "east": ["details-v1"],
        },
    )


def multi_network(name: str = "dual") -> MeshSpec:
    """Two primaries on two networks; reviews-v2/v3 and ratings only across the east-west gateways."""
    return mesh_spec(
        name,
        [ALPHA, BETA],
        {
            "alpha": ["productpage-v1", "details-v1", "reviews-v1"],
            "beta": ["reviews-v2", "reviews-v3", "ratings-v1"],
        },
    )


def pem(tag: str) -> str:
    body = base64.b64encode(f"root {tag}".encode()).decode()
    return base64.b64encode(
        f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()
    ).decode()


def _meta(name: str, namespace: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(labels or {})}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _service(
    name: str, ns: str, selector: dict[str, str], ports: list[tuple[int, int]], **extra: Any
) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "metadata": _meta(name, ns, extra.pop("labels", None)),
        "spec": {
            "selector": selector,
            "ports": [{"port": p, "targetPort": t} for p, t in ports],
            **extra.pop("spec", {}),
        },
    }
    if "address" in extra:
        svc["spec"]["type"] = "LoadBalancer"
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": extra["address"]}]}}
    return svc


class Builder:
    """Adds objects to a snapshot, with pod IPs taken from each cluster's pod range."""

    def __init__(self, spec: MeshSpec, *, lb_base: str = "127.1.0") -> None:
        self.spec = spec
        self.mesh = Mesh(clusters={}, firewalls=[], synced={})
        self._ips: dict[str, Any] = {}
        self._lb = iter(f"{lb_base}.{i}" for i in range(1, 250))
        self.addresses: dict[tuple[str, str], str] = {}

    def add(self, cluster: str, type_key: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.mesh.clusters[cluster].objects.setdefault(type_key, []).append(obj)
        return obj

    def pod(
        self, cluster: str, name: str, ns: str, labels: dict[str, str], containers: list[dict[str, Any]]
    ) -> None:
        ip = str(next(self._ips[cluster]))
        spec = {"containers": [*copy.deepcopy(containers), {"name": "istio-proxy"}]}
        self.add(
            cluster,
            "/pods",
            {
                "metadata": _meta(f"{name}-7d9f8", ns, labels),
                "spec": spec,
                "status": {**RUNNING, "podIP": ip},
            },
        )

    def lb(self, cluster: str, name: str) -> str:
        self.addresses[(cluster, name)] = address = next(self._lb)
        return address

    def cluster(self, name: str) -> None:
        c = self.spec.cluster(name)
        assert c.pod_cidr is not None
        node = Node(
            name, self.spec.project, self.spec.network, c.pod_cidr, (naming.node_tag(self.spec.name),)
        )
        self.mesh.clusters[name] = Cluster(
            node, endpoint=f"https://127.0.0.1:{6443 + len(self.mesh.clusters)}"
        )
        self._ips[name] = ipaddress.ip_network(c.pod_cidr).hosts()
        self.add(name, "/namespaces", istio_values.namespace(self.spec, c))
        secret = {
            "metadata": _meta("cacerts", "istio-system"),
            "data": {"root-cert.pem": pem(self.spec.name)},
        }
        self.add(name, "/secrets", secret)

    def istiod(self, name: str) -> None:
        env = [{"name": "CLUSTER_ID", "value": name}]
        dep = {
            "metadata": _meta("istiod", "istio-system", ISTIOD_LABELS),
            "spec": {
                "template": {
                    "metadata": {"labels": ISTIOD_LABELS},
                    "spec": {"containers": [{"name": "discovery", "env": env}]},
                }
            },
            "status": {"readyReplicas": 1},
        }
        self.add(name, "apps/deployments", dep)
        self.add(
            name,
            "/services",
            _service("istiod", "istio-system", ISTIOD_LABELS, [(15012, 15012), (443, 15017), (15014, 15014)]),
        )
        self._webhook(name)

    def remote_istiod(self, name: str, address: str) -> None:
        self.add(name, "/services", _service("istiod", "istio-system", {}, [(15012, 15012), (443, 15017)]))
        slice_ = {
            "metadata": _meta("istiod-1", "istio-system", {"kubernetes.io/service-name": "istiod"}),
            "endpoints": [{"addresses": [address]}],
        }
        self.add(name, "discovery.k8s.io/endpointslices", slice_)
        self._webhook(name)

    def _webhook(self, name: str) -> None:
        hooks = [
            {
                "name": "namespace.sidecar-injector.istio.io",
                "clientConfig": {
                    "service": {"name": "istiod", "namespace": "istio-system", "path": "/inject", "port": 443}
                },
                "namespaceSelector": {
                    "matchExpressions": [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]
                },
                "objectSelector": {
                    "matchExpressions": [
                        {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}
                    ]
                },
                "failurePolicy": "Fail",
            },
            {
                "name": "object.sidecar-injector.istio.io",
                "clientConfig": {
                    "service": {"name": "istiod", "namespace": "istio-system", "path": "/inject", "port": 443}
                },
                "namespaceSelector": {
                    "matchExpressions": [{"key": "istio-injection", "operator": "DoesNotExist"}]
                },
                "objectSelector": {
                    "matchExpressions": [
                        {"key": "sidecar.istio.io/inject", "operator": "In", "values": ["true"]}
                    ]
                },
                "failurePolicy": "Fail",
            },
        ]
        self.add(
            name,
            "admissionregistration.k8s.io/mutatingwebhookconfigurations",
            {"metadata": _meta("istio-sidecar-injector"), "webhooks": hooks},
        )

    def eastwest(self, name: str) -> str:
        address = self.lb(name, "eastwest")
        net = {naming.NETWORK_LABEL: self.spec.istio_network(self.spec.cluster(name))}
        ports = [(15021, 15021), (15443, 15443), (15012, 15012), (15017, 15017)]
        self.add(
            name,
            "/services",
            _service(
                naming.EASTWEST_RELEASE, "istio-system", EASTWEST_LABELS, ports, labels=net, address=address
            ),
        )
        self.pod(name, naming.EASTWEST_RELEASE, "istio-system", {**EASTWEST_LABELS, **net}, [])
        if self.spec.cluster(name).primary is None:
            for m in istio_values.exposures(self.spec, self.spec.cluster(name), [""]):
                self.add(name, f"networking.istio.io/{m['kind'].lower()}s", m)
        return address

    def ingress(self, name: str) -> str:
        address = self.lb(name, "ingress")
        ports = [(15021, 15021), (80, 80), (443, 443)]  # istio/gateway values.yaml
        self.add(
            name,
            "/services",
            _service(naming.INGRESS_RELEASE, "istio-system", INGRESS_LABELS, ports, address=address),
        )
        self.pod(name, naming.INGRESS_RELEASE, "istio-system", INGRESS_LABELS, [])
        return address

    def bookinfo(self, name: str) -> None:
        kinds = {"Namespace": "/namespaces", "Service": "/services", "Gateway": "networking.istio.io/gateways",
                 "VirtualService": "networking.istio.io/virtualservices",
                 "PeerAuthentication": "security.istio.io/peerauthentications"}  # fmt: skip
        for m in bookinfo.manifests(self.spec, name):
            if m["kind"] == "Deployment":
                t = m["spec"]["template"]
                self.pod(
                    name,
                    m["metadata"]["name"],
                    m["metadata"]["namespace"],
                    t["metadata"]["labels"],
                    t["spec"]["containers"],
                )
            elif m["kind"] in kinds:
                self.add(name, kinds[m["kind"]], copy.deepcopy(m))


def healthy(spec: MeshSpec, *, lb_base: str = "127.1.0") -> tuple[Mesh, str]:
    """A mesh as meshwright builds it, all remote secrets synced; returns it and the ingress address."""
    b = Builder(spec, lb_base=lb_base)
    for c in spec.clusters:
        b.cluster(c.name)
    eastwest = {}
    for c in spec.primaries:
        b.istiod(c.name)
        if istio_values.needs_eastwest(spec, c):
            eastwest[c.name] = b.eastwest(c.name)
    for c in spec.remotes:
        assert c.primary is not None
        b.remote_istiod(c.name, eastwest[c.primary])
        if istio_values.needs_eastwest(spec, c):
            b.eastwest(c.name)
    address = ""
    for c in spec.clusters:
        if c.name in bookinfo.entry_clusters(spec):
            address = b.ingress(c.name)
        b.bookinfo(c.name)
    b.mesh.firewalls = [
        {
            "name": naming.firewall_name(spec.name),
            "_project": spec.project,
            "network": f"projects/{spec.project}/global/networks/{spec.network}",
            "direction": "INGRESS",
            "priority": naming.FIREWALL_PRIORITY,
            "sourceRanges": [c.pod_cidr for c in spec.clusters],
            "targetTags": [naming.node_tag(spec.name)],
            "allowed": [{"IPProtocol": p} for p in naming.FIREWALL_PROTOCOLS],
        }
    ]
    b.mesh.synced = {ControlPlane(p.name): {c.name for c in spec.clusters} - {p.name} for p in spec.primaries}
    return b.mesh, address
