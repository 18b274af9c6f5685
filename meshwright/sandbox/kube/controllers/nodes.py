"""The cluster's Nodes, made from its GKE node pools: one per VM, with GKE's names, labels and addresses.

Internal IPs come from a per-cluster /24 of the default VPC's 10.128.0.0/9; each node gets a /24 of
the cluster's pod range as `spec.podCIDR`. Pods are spread over the nodes and carry their IP as hostIP.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any

from meshwright.sandbox.kube.controllers.builders import safe_suffix

KUBELET = "v1.32.4-gke.1106000"
VPC = ipaddress.IPv4Network("10.128.0.0/9")


def _capacity(machine_type: str) -> dict[str, str]:
    m = re.match(r"^[a-z0-9]+-(standard|highmem|highcpu)-(\d+)$", machine_type)
    cpus = int(m.group(2)) if m else 2
    per_cpu = {"highmem": 8, "highcpu": 1}.get(m.group(1) if m else "", 4)
    return {
        "cpu": str(cpus),
        "memory": f"{cpus * per_cpu}Gi",
        "pods": "110",
        "ephemeral-storage": "98831908Ki",
    }


def _pod_cidr(pod_net: ipaddress.IPv4Network | ipaddress.IPv6Network, n: int) -> str:
    if pod_net.version != 4 or pod_net.prefixlen > 24:
        return str(pod_net)
    return str(ipaddress.IPv4Network((int(pod_net.network_address) + n * 256, 24)))


def for_cluster(cluster: dict[str, Any], *, index: int) -> list[dict[str, Any]]:
    """The Node objects of a GKE cluster record (`index` keeps clusters' node addresses apart)."""
    pod_net = ipaddress.ip_network(cluster["clusterIpv4Cidr"])
    subnet = ipaddress.IPv4Network((int(VPC.network_address) + (index % 32768) * 256, 24))
    zones = cluster.get("locations") or [cluster["location"]]
    nodes: list[dict[str, Any]] = []
    for pool in cluster.get("nodePools") or []:
        group = hashlib.sha256(f"{cluster['id']}/{pool['name']}".encode()).hexdigest()[:8]
        machine = str((pool.get("config") or {}).get("machineType") or "e2-medium")
        for zone in zones:
            for _ in range(int(pool.get("initialNodeCount") or 1)):
                n = len(nodes)
                name = f"gke-{cluster['name']}-{pool['name']}-{group}-{safe_suffix(f'{group}/{n}', 4)}"[:63]
                ip = str(subnet[2 + n])
                pod_cidr = _pod_cidr(pod_net, n)
                nodes.append(_node(name, ip, pod_cidr, zone=zone, pool=pool["name"], machine=machine))
    return nodes


def _node(name: str, ip: str, pod_cidr: str, *, zone: str, pool: str, machine: str) -> dict[str, Any]:
    region = zone.rsplit("-", 1)[0]
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": machine,
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": zone,
        "cloud.google.com/gke-nodepool": pool,
        "cloud.google.com/machine-family": machine.split("-")[0],
    }
    capacity = _capacity(machine)
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
    }
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr], "providerID": f"gce://sandbox/{zone}/{name}"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [ready],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": hashlib.sha256(name.encode()).hexdigest()[:32],
                "containerRuntimeVersion": "containerd://1.7.24",
                "kernelVersion": "6.6.56+",
                "kubeProxyVersion": KUBELET,
                "kubeletVersion": KUBELET,
                "machineID": hashlib.md5(name.encode()).hexdigest(),
                "operatingSystem": "linux",
                "osImage": "Container-Optimized OS from Google",
                "systemUUID": hashlib.md5(ip.encode()).hexdigest(),
            },
        },
    }
