"""The reaper's side of issue 22.6: the load balancers GKE left behind for a gateway of a deleted
cluster are found (tied to it by the node tag of their `k8s-fw-` rule) and deleted; those of a live
cluster, or of a Service that is no gateway of meshwright's, are not."""

from __future__ import annotations

from typing import Any

import kubernetes.client

from meshwright import clients, naming
from meshwright.clients import MeshwrightTarget
from meshwright.models import LoadBalancerRef
from meshwright.sandbox.world import World
from tasks.network import delete_load_balancer, find_orphaned_load_balancers, forwarding_rule_exists
from tests.support import PARENT, PROJECT, gke_client, kube_client, running_cluster, wait_done, wait_for


def balanced(world: World, cluster: str, namespace: str, name: str) -> str:
    """A LoadBalancer Service in `cluster`, once GKE made its forwarding rule; its load balancer's name."""
    core = kubernetes.client.CoreV1Api(kube_client(world, running_cluster(gke_client(world), cluster)))
    if namespace != "default":
        core.create_namespace({"metadata": {"name": namespace}})
    ports: list[dict[str, Any]] = [{"name": "tls", "port": 15443}]
    body = {
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "selector": {"a": "b"}, "ports": ports},
    }
    lb = naming.load_balancer_name(core.create_namespaced_service(namespace, body).metadata.uid)
    wait_for(lambda: world.compute.forwarding_rules.get(f"{PROJECT}/us-central1/{lb}"), what=lb)
    return lb


def test_the_reaper_deletes_only_a_gone_clusters_gateway_load_balancer(
    sandbox: World, target: MeshwrightTarget
) -> None:
    gone = balanced(sandbox, "central", naming.ISTIO_NAMESPACE, naming.EASTWEST_RELEASE)
    other = balanced(sandbox, "central-b", "default", "shop")  # not a gateway: not meshwright's
    alive = balanced(sandbox, "central-c", naming.ISTIO_NAMESPACE, naming.INGRESS_RELEASE)
    gke = gke_client(sandbox)
    for cluster in ("central", "central-b"):
        wait_done(gke, PARENT, gke.delete_cluster(name=f"{PARENT}/clusters/{cluster}").name)

    found = find_orphaned_load_balancers.fn(target, PROJECT)
    service = f"{naming.ISTIO_NAMESPACE}/{naming.EASTWEST_RELEASE}"
    assert found == [LoadBalancerRef(name=gone, region="us-central1", service=service, cluster="central")]
    assert delete_load_balancer.fn(target, PROJECT, found[0]) == "deleted"
    assert not forwarding_rule_exists(target, PROJECT, "us-central1", gone)
    assert {naming.lb_firewall_name(n) for n in (other, alive)} <= {
        r.name for r in clients.cloud(target).firewalls.list(project=PROJECT)
    }
    assert find_orphaned_load_balancers.fn(target, PROJECT) == []
    assert delete_load_balancer.fn(target, PROJECT, found[0]) == "absent"  # twice is fine
