"""Teardown's first step on each cluster: uninstall the gateways, wait for GKE to delete their load balancers.

GKE only "attempts" to delete the load balancers of a cluster's LoadBalancer Services and recommends
deleting those Services before the cluster (GKE's "Deleting a cluster";
`gcloud container clusters delete`: their deletion "is not always guaranteed"). The gateways'
releases are the mesh's only LoadBalancer Services (istio-eastwestgateway, istio-ingressgateway).
Installing them is tasks/istio.py's and tasks/bookinfo.py's; this module only removes them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kubernetes.client
from google.cloud import container_v1
from kubernetes.client.api.core_v1_api import CoreV1Api
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from meshwright import clients, helm, naming
from meshwright.clients import MeshwrightTarget
from meshwright.models import ClusterRef
from meshwright.translate import kube_call
from tasks.clusters import get_cluster
from tasks.common import RETRYING
from tasks.network import forwarding_rule_exists, wait_forwarding_rules_gone


def _gateway_balancers(client: kubernetes.client.ApiClient, *, cluster: str, endpoint: str) -> list[str]:
    """The load-balancer names of the cluster's gateway Services, from their UIDs."""
    with kube_call(cluster=cluster, step="uninstall_gateways", what="services", endpoint=endpoint):
        listed = CoreV1Api(client).list_namespaced_service(naming.ISTIO_NAMESPACE)
    services: list[dict[str, Any]] = client.sanitize_for_serialization(listed)["items"]
    return [
        naming.load_balancer_name(s["metadata"]["uid"])
        for s in services
        if s["metadata"]["name"] in naming.GATEWAY_RELEASES and s["spec"].get("type") == "LoadBalancer"
    ]


def _uninstall(command: helm.HelmCommand, *, cluster: str) -> list[str]:
    present = {r["name"] for r in helm.list_releases(command, naming.ISTIO_NAMESPACE)}
    gone = [r for r in naming.GATEWAY_RELEASES if r in present]
    for release in gone:
        asyncio.run(command.uninstall(release, namespace=naming.ISTIO_NAMESPACE))
    get_run_logger().info("uninstalled %s from %s", ", ".join(gone) or "no gateway", cluster)
    return gone


@task(task_run_name="uninstall_gateways[{ref.name}]", cache_policy=NO_CACHE, **RETRYING)
def uninstall_gateways(target: MeshwrightTarget, project: str, ref: ClusterRef) -> list[str]:
    """Uninstall the cluster's gateways and wait until GKE has deleted their load balancers.

    GKE only attempts to delete a cluster's load balancers and recommends deleting its LoadBalancer
    Services first (GKE's "Deleting a cluster"); otherwise their forwarding rules outlive it.
    A cluster that is not RUNNING is left as it is. Returns the forwarding rules that went.

    Args:
        target: where the mesh is built.
        project: the cluster's project.
        ref: the cluster.
    """
    cluster = get_cluster(target, project, ref.location, ref.name, step="uninstall_gateways")
    if cluster is None or cluster.status != container_v1.Cluster.Status.RUNNING:
        return []
    cloud = clients.cloud(target)
    endpoint, ca = cluster.endpoint, cluster.master_auth.cluster_ca_certificate
    region = naming.region_of(ref.location)
    names = _gateway_balancers(cloud.kube(endpoint, ca), cluster=ref.name, endpoint=endpoint)
    made = [n for n in names if forwarding_rule_exists(target, project, region, n)]
    with cloud.helm(ref.name, endpoint, ca, step="uninstall_gateways") as command:
        _uninstall(command, cluster=ref.name)
    wait_forwarding_rules_gone(target, project, region, names, cluster=ref.name)
    return made
