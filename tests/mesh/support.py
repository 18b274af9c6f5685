"""The Istio objects the control-plane code reads, made directly with the Kubernetes client as the
charts would render them (namespace, reader service account, cacerts, istiod Deployment and Services,
the east-west gateway, the remote's istiod EndpointSlice), so these tests do not depend on Helm."""

from __future__ import annotations

import base64

import kubernetes.client

from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.models import ClusterAccess
from meshwright.sandbox.world import World
from meshwright.spec import MeshSpec, validate_spec

NS = "istio-system"
READ = ["get", "list", "watch"]
READER_RULES = [  # the read rules of Istio's istio-reader-clusterrole (istio-discovery/templates)
    {
        "apiGroups": ["config.istio.io", "security.istio.io", "networking.istio.io", "telemetry.istio.io"],
        "resources": ["*"],
        "verbs": READ,
    },
    {
        "apiGroups": [""],
        "resources": ["endpoints", "pods", "services", "nodes", "namespaces", "secrets", "configmaps"],
        "verbs": READ,
    },
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": READ},
]
ISTIOD_LABELS = {"app": "istiod", "istio": "pilot"}
REMOTE_ISTIOD = "istiod-1-30-3"  # the remote profile's Service for the spec's revision
EASTWEST_LABELS = {"app": "istio-eastwestgateway", "istio": "eastwestgateway"}


def mesh_spec() -> MeshSpec:
    """central and east are primaries, west is central's remote."""
    return validate_spec(
        {
            "name": "m1",
            "project": "demo-project",
            "clusters": [
                {"name": "central", "location": "us-central1-a", "pod_cidr": "10.8.0.0/14"},
                {"name": "east", "location": "us-east1-b", "pod_cidr": "10.16.0.0/14"},
                {"name": "west", "location": "us-west1-b", "pod_cidr": "10.24.0.0/14", "primary": "central"},
            ],
        }
    )


def kube(target: MeshwrightTarget, access: ClusterAccess) -> kubernetes.client.ApiClient:
    return clients.cloud(target).kube(access.endpoint, access.ca_certificate)


def core(target: MeshwrightTarget, access: ClusterAccess) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kube(target, access))


def install_istio_objects(
    target: MeshwrightTarget, access: ClusterAccess, *, root: bytes, primary: bool
) -> None:
    api = core(target, access)
    api.create_namespace({"metadata": {"name": NS}})
    api.create_namespaced_service_account(NS, {"metadata": {"name": "istio-reader-service-account"}})
    grant_reader(target, access)
    set_root(target, access, root)
    if primary:
        create_istiod(target, access)
    if access.name == "central":
        api.create_namespaced_service(
            NS,
            {
                "metadata": {"name": "istio-eastwestgateway", "labels": EASTWEST_LABELS},
                "spec": {
                    "type": "LoadBalancer",
                    "selector": EASTWEST_LABELS,
                    "ports": [
                        {"name": "status-port", "port": 15021},
                        {"name": "tls", "port": 15443},
                        {"name": "tls-istiod", "port": 15012},
                        {"name": "tls-webhook", "port": 15017},
                    ],
                },
            },
        )


def set_root(target: MeshwrightTarget, access: ClusterAccess, root: bytes) -> None:
    """cacerts with the given root (the intermediate's parts are not read by these checks)."""
    api, b64 = core(target, access), base64.b64encode(root).decode()
    body = {"metadata": {"name": "cacerts"}, "data": {"root-cert.pem": b64, "cert-chain.pem": b64}}
    try:
        api.replace_namespaced_secret("cacerts", NS, body)
    except kubernetes.client.ApiException as e:
        if e.status != 404:
            raise
        api.create_namespaced_secret(NS, body)


def create_istiod(target: MeshwrightTarget, access: ClusterAccess) -> None:
    env = [
        {"name": "CLUSTER_ID", "value": access.name},
        {"name": "PILOT_REMOTE_CLUSTER_TIMEOUT", "value": "30s"},
    ]
    kubernetes.client.AppsV1Api(kube(target, access)).create_namespaced_deployment(
        NS,
        {
            "metadata": {"name": "istiod", "labels": ISTIOD_LABELS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": ISTIOD_LABELS},
                "template": {
                    "metadata": {"labels": ISTIOD_LABELS},
                    "spec": {
                        "containers": [
                            {"name": "discovery", "image": "docker.io/istio/pilot:1.28.0", "env": env}
                        ]
                    },
                },
            },
        },
    )
    core(target, access).create_namespaced_service(
        NS,
        {
            "metadata": {"name": "istiod", "labels": ISTIOD_LABELS},
            "spec": {
                "selector": ISTIOD_LABELS,
                "ports": [
                    {"name": "grpc-xds", "port": 15010},
                    {"name": "https-dns", "port": 15012},
                    {"name": "https-webhook", "port": 443, "targetPort": 15017},
                    {"name": "http-monitoring", "port": 15014},
                ],
            },
        },
    )


def point_remote_istiod(target: MeshwrightTarget, access: ClusterAccess, address: str) -> None:
    """What the istiod chart's remote profile renders: Service istiod-<revision> backed by an EndpointSlice to an IP."""
    core(target, access).create_namespaced_service(
        NS, {"metadata": {"name": REMOTE_ISTIOD}, "spec": {"ports": [{"name": "tcp-istiod", "port": 15012}]}}
    )
    kubernetes.client.DiscoveryV1Api(kube(target, access)).create_namespaced_endpoint_slice(
        NS,
        {
            "metadata": {"name": "istiod-remote", "labels": {"kubernetes.io/service-name": REMOTE_ISTIOD}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address]}],
            "ports": [{"name": "tcp-istiod", "port": 15012, "protocol": "TCP"}],
        },
    )


def eastwest_ip(target: MeshwrightTarget, access: ClusterAccess) -> str | None:
    svc = core(target, access).read_namespaced_service("istio-eastwestgateway", NS)
    ingress = (svc.status.load_balancer.ingress if svc.status and svc.status.load_balancer else None) or []
    return ingress[0].ip if ingress else None


def istiod_ready(target: MeshwrightTarget, access: ClusterAccess) -> bool:
    dep = kubernetes.client.AppsV1Api(kube(target, access)).read_namespaced_deployment("istiod", NS)
    return bool(dep.status and dep.status.ready_replicas)


def sandbox_id(world: World, name: str) -> str:
    """The sandbox's own id of a cluster (what the fleet keys its API servers by)."""
    return next(cid for cid, running in world.fleet.running_apis.items() if running.name == name)


def grant_reader(target: MeshwrightTarget, access: ClusterAccess) -> None:
    """The reader's ClusterRole and ClusterRoleBinding, as the istiod chart renders them (RBAC is enforced)."""
    rbac = kubernetes.client.RbacAuthorizationV1Api(kube(target, access))
    name = f"istio-reader-clusterrole-{NS}"
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": READER_RULES})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "istio-reader-service-account", "namespace": NS}],
        }
    )
