"""`Table` responses, so that `kubectl get` prints the usual columns."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from meshwright.sandbox.kube.registry import ResourceType

Column = tuple[str, Callable[[dict[str, Any]], Any], int]  # name, cell, priority (1 = wide only)


def _age(obj: dict[str, Any]) -> str:
    created = obj["metadata"].get("creationTimestamp")
    if not created:
        return "<unknown>"
    seconds = max(
        0, int(time.time() - time.mktime(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")) + time.timezone)
    )
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _get(obj: dict[str, Any], path: str, default: Any = "") -> Any:
    node: Any = obj
    for part in path.strip(".").split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return default if node is None else node


def _ports(svc: dict[str, Any]) -> str:
    ports = _get(svc, "spec.ports", [])
    return (
        ",".join(
            f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
            for p in ports
        )
        or "<none>"
    )


def _external(svc: dict[str, Any]) -> str:
    ingress = _get(svc, "status.loadBalancer.ingress", [])
    if ingress:
        return ",".join(i.get("ip", "") for i in ingress)
    return "<pending>" if _get(svc, "spec.type") == "LoadBalancer" else "<none>"


COLUMNS: dict[str, list[Column]] = {
    "Namespace": [("Status", lambda o: _get(o, "status.phase"), 0)],
    "Secret": [("Type", lambda o: _get(o, "type"), 0), ("Data", lambda o: len(_get(o, "data", {})), 0)],
    "ConfigMap": [("Data", lambda o: len(_get(o, "data", {})), 0)],
    "Service": [
        ("Type", lambda o: _get(o, "spec.type", "ClusterIP"), 0),
        ("Cluster-IP", lambda o: _get(o, "spec.clusterIP"), 0),
        ("External-IP", _external, 0),
        ("Port(s)", _ports, 0),
    ],
    "Deployment": [
        ("Ready", lambda o: f"{_get(o, 'status.readyReplicas', 0)}/{_get(o, 'spec.replicas', 1)}", 0),
        ("Up-to-date", lambda o: _get(o, "status.updatedReplicas", 0), 0),
        ("Available", lambda o: _get(o, "status.availableReplicas", 0), 0),
    ],
    "Pod": [
        ("Ready", lambda o: "1/1" if _get(o, "status.phase") == "Running" else "0/1", 0),
        ("Status", lambda o: _get(o, "status.phase"), 0),
        ("Restarts", lambda o: 0, 0),
        ("IP", lambda o: _get(o, "status.podIP", "<none>"), 1),
    ],
}


def _columns(rt: ResourceType) -> list[Column]:
    if rt.custom:
        return [
            (c["name"], (lambda path: lambda o: _get(o, path))(c["jsonPath"]), int(c.get("priority", 0)))
            for c in rt.printer_columns
        ]
    return COLUMNS.get(rt.kind, [])


def table(rt: ResourceType, objects: list[dict[str, Any]], *, resource_version: str) -> dict[str, Any]:
    columns = [("Name", lambda o: o["metadata"]["name"], 0), *_columns(rt), ("Age", _age, 0)]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": name,
                "type": "string",
                "format": "name" if name == "Name" else "",
                "description": "",
                "priority": prio,
            }
            for name, _, prio in columns
        ],
        "rows": [
            {
                "cells": [cell(o) for _, cell, _ in columns],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                },
            }
            for o in objects
        ],
    }


def wants_table(accept: str) -> bool:
    return "as=Table" in accept
