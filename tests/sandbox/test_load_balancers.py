"""GKE's service controller in the sandbox's Compute: a LoadBalancer Service has a forwarding rule and a
`k8s-fw-` rule named as kubernetes/cloud-provider-gcp providers/gce/gce_loadbalancer_external.go names
them; they go with the Service, and stay when the cluster goes first (GKE's "Deleting a cluster")."""

from __future__ import annotations

import json
from typing import Any

import kubernetes.client
import pytest
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import NotFound
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, container_v1

from meshwright.sandbox.gcp.loadbalancers import balancer_name, port_ranges
from meshwright.sandbox.world import World
from tests.support import PARENT, PROJECT, wait_done, wait_for

REGION = "us-central1"


@pytest.fixture
def rules(world: World) -> compute_v1.ForwardingRulesClient:
    options = ClientOptions(api_endpoint=world.base_url())
    return compute_v1.ForwardingRulesClient(
        credentials=AnonymousCredentials(), transport="rest", client_options=options
    )


def gateway(core: kubernetes.client.CoreV1Api) -> Any:
    body = {
        "metadata": {"name": "istio-eastwestgateway"},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "gw"},
            "ports": [{"name": "tls", "port": 15443}, {"name": "istiod", "port": 15012}],
        },
    }
    return core.create_namespaced_service("default", body)


def listed(rules: compute_v1.ForwardingRulesClient) -> list[str]:
    return sorted(
        r.name for _, scoped in rules.aggregated_list(project=PROJECT) for r in scoped.forwarding_rules
    )


def test_a_load_balancer_service_gets_the_rules_gke_names_and_loses_them_with_the_service(
    kube: kubernetes.client.ApiClient,
    rules: compute_v1.ForwardingRulesClient,
    firewalls: compute_v1.FirewallsClient,
    central: container_v1.Cluster,
) -> None:
    core = kubernetes.client.CoreV1Api(kube)
    uid = gateway(core).metadata.uid
    name = ("a" + uid.replace("-", ""))[:32]
    rule = wait_for(
        lambda: listed(rules) and rules.get(project=PROJECT, region=REGION, forwarding_rule=name), what="rule"
    )
    address = (
        core.read_namespaced_service("istio-eastwestgateway", "default").status.load_balancer.ingress[0].ip
    )
    assert (rule.I_p_address, rule.I_p_protocol, rule.port_range) == (address, "TCP", "15012-15443")
    assert json.loads(rule.description) == {"kubernetes.io/service-name": "default/istio-eastwestgateway"}
    fw = firewalls.get(project=PROJECT, firewall=f"k8s-fw-{name}")
    assert list(fw.target_tags) == [f"gke-central-{central.id[:8]}-node"]
    assert list(fw.destination_ranges) == [address]
    assert [(a.I_p_protocol, list(a.ports)) for a in fw.allowed] == [("tcp", ["15012", "15443"])]

    core.delete_namespaced_service("istio-eastwestgateway", "default")
    wait_for(lambda: not listed(rules), what="the forwarding rule gone")
    with pytest.raises(NotFound):
        firewalls.get(project=PROJECT, firewall=f"k8s-fw-{name}")


def test_deleting_the_cluster_first_leaves_its_load_balancer_behind(
    kube: kubernetes.client.ApiClient,
    gke: container_v1.ClusterManagerClient,
    rules: compute_v1.ForwardingRulesClient,
) -> None:
    uid = gateway(kubernetes.client.CoreV1Api(kube)).metadata.uid
    wait_for(lambda: listed(rules), what="the forwarding rule")
    wait_done(gke, PARENT, gke.delete_cluster(name=f"{PARENT}/clusters/central").name)
    assert listed(rules) == [balancer_name(uid)]
    rules.delete(project=PROJECT, region=REGION, forwarding_rule=balancer_name(uid)).result()
    assert listed(rules) == []


def test_names_and_port_ranges_follow_the_cloud_provider() -> None:
    assert balancer_name("0b2e6c3a-47d1-4c7e-9d1b-5f3c2a1e8d7f") == "a0b2e6c3a47d14c7e9d1b5f3c2a1e8d7"
    assert port_ranges([15443, 80, 81, 82, 15012]) == ["80-82", "15012", "15443"]
