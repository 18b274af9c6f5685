"""What the workload controllers write, as pure functions: owner references, conditions, statuses,
Endpoints subsets and EndpointSlices, and Kubernetes' safe random-looking suffixes.

Named for what it does, apart from `workloads.py` (once `workload_objects.py`, which read as a second
workloads module): `workloads.py` holds the controllers, which decide *when* to write and hold the
cluster, its lock and the timers; this module only builds *what* they write, from its arguments and
the clock, so it needs no cluster (nodes.py names its Nodes with `safe_suffix` too).
"""

from __future__ import annotations

import hashlib
from typing import Any

from meshwright.sandbox import clock

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' rand.SafeEncodeString


def safe_suffix(seed: str, length: int = 5) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in digest[:length])


def endpoint_slice(svc: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    meta = svc["metadata"]
    endpoints = [
        {
            "addresses": [p["status"]["podIP"]],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": p["spec"].get("nodeName"),
            "targetRef": {
                "kind": "Pod",
                "name": p["metadata"]["name"],
                "namespace": meta["namespace"],
                "uid": p["metadata"]["uid"],
            },
        }
        for p in pods
    ]
    ports = [{k: v for k, v in endpoint_port(pt).items() if v != ""} for pt in svc["spec"].get("ports") or []]
    labels = {
        **(meta.get("labels") or {}),
        "kubernetes.io/service-name": meta["name"],
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    return {
        "metadata": {
            "name": f"{meta['name']}-{safe_suffix(meta['uid'])}",
            "namespace": meta["namespace"],
            "labels": labels,
            "generateName": f"{meta['name']}-",
            "ownerReferences": [
                {**owner({**svc, "apiVersion": "v1", "kind": "Service"}), "blockOwnerDeletion": True}
            ],
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }


def selected(pod: dict[str, Any], selector: dict[str, str]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def endpoint_port(port: dict[str, Any]) -> dict[str, Any]:
    target = port.get("targetPort")
    return {
        "name": port.get("name", ""),
        "port": target if isinstance(target, int) else port.get("port"),
        "protocol": port.get("protocol", "TCP"),
    }


def subsets(svc: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not pods:
        return []
    ns = svc["metadata"]["namespace"]
    addresses = [
        {
            "ip": p["status"]["podIP"],
            "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns},
        }
        for p in pods
    ]
    return [{"addresses": addresses, "ports": [endpoint_port(pt) for pt in svc["spec"].get("ports") or []]}]


def rolling_out(dep: dict[str, Any], rs: dict[str, Any]) -> dict[str, Any]:
    replicas = (dep.get("spec") or {}).get("replicas", 1)
    message = f'ReplicaSet "{rs["metadata"]["name"]}" is progressing.'
    # The new pods are not ready until the rollout latency has passed; until then nothing new is
    # ready or available: the status says so (it is merged, and a stale availableReplicas from the
    # previous rollout made `kubectl rollout status` and meshwright's rollout wait return early).
    return {
        "observedGeneration": dep["metadata"].get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": None,
        "availableReplicas": None,
        "unavailableReplicas": replicas,
        "conditions": [condition("Progressing", "True", "ReplicaSetUpdated", message)],
    }


def replica_set_ready(n: int, generation: int) -> dict[str, Any]:
    return {
        "replicas": n,
        "readyReplicas": n,
        "availableReplicas": n,
        "fullyLabeledReplicas": n,
        "conditions": None,  # a ReplicaFailure is over once the pods exist
        "observedGeneration": generation,
    }


def deployment_available(dep: dict[str, Any], n: int, rs_name: str) -> dict[str, Any]:
    """The Deployment's status once `n` pods of `rs_name` run: available only if they are all it wants."""
    want = (dep.get("spec") or {}).get("replicas", 1)
    if n >= want:
        available = condition(
            "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
        )
        progressing = condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
        )
    else:
        available = condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
        progressing = condition(
            "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.'
        )
    return {
        "observedGeneration": dep["metadata"].get("generation", 1),
        "replicas": n,
        "updatedReplicas": n,
        "readyReplicas": n or None,
        "availableReplicas": n or None,
        "unavailableReplicas": (want - n) if want > n else None,
        "conditions": [available, progressing],
    }


def owner(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    stamp = clock.rfc3339()
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
    }
