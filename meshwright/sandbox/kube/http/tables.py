"""`Table` responses, so that `kubectl get` prints the usual columns."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshwright.sandbox import dotted
from meshwright.sandbox.kube.registry import ResourceType


@dataclass(frozen=True)
class Column:
    name: str
    cell: Callable[[dict[str, Any]], Any]
    priority: int = 0  # 1 = shown with -o wide only
    type: str = "string"
    format: str = ""
    description: str = ""


def age_of(stamp: Any) -> str:
    """`kubectl`'s short age of an RFC 3339 timestamp (`12s`, `5m`, `3h`, `2d`)."""
    try:
        then = calendar.timegm(time.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return "<unknown>"
    seconds = max(0, int(time.time() - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _age(obj: dict[str, Any]) -> str:
    return age_of(obj["metadata"].get("creationTimestamp"))


def _get(obj: dict[str, Any], path: str, default: Any = "") -> Any:
    return dotted.get(obj, path, default)


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


def _c(name: str, cell: Callable[[dict[str, Any]], Any], priority: int = 0) -> Column:
    return Column(name, cell, priority)


COLUMNS: dict[str, list[Column]] = {
    "Namespace": [_c("Status", lambda o: _get(o, "status.phase"), 0)],
    "Secret": [_c("Type", lambda o: _get(o, "type"), 0), _c("Data", lambda o: len(_get(o, "data", {})), 0)],
    "ConfigMap": [_c("Data", lambda o: len(_get(o, "data", {})), 0)],
    "Service": [
        _c("Type", lambda o: _get(o, "spec.type", "ClusterIP"), 0),
        _c("Cluster-IP", lambda o: _get(o, "spec.clusterIP"), 0),
        _c("External-IP", _external, 0),
        _c("Port(s)", _ports, 0),
    ],
    "Deployment": [
        _c("Ready", lambda o: f"{_get(o, 'status.readyReplicas', 0)}/{_get(o, 'spec.replicas', 1)}", 0),
        _c("Up-to-date", lambda o: _get(o, "status.updatedReplicas", 0), 0),
        _c("Available", lambda o: _get(o, "status.availableReplicas", 0), 0),
    ],
    "Node": [
        _c(
            "Status",
            lambda o: (
                "Ready"
                if any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in _get(o, "status.conditions", [])
                )
                else "NotReady"
            ),
        ),
        _c("Roles", lambda o: "<none>"),
        _c("Version", lambda o: _get(o, "status.nodeInfo.kubeletVersion")),
    ],
    "ReplicaSet": [
        _c("Desired", lambda o: _get(o, "spec.replicas", 1)),
        _c("Current", lambda o: _get(o, "status.replicas", 0)),
        _c("Ready", lambda o: _get(o, "status.readyReplicas", 0)),
    ],
    "HorizontalPodAutoscaler": [
        _c(
            "Reference",
            lambda o: f"{_get(o, 'spec.scaleTargetRef.kind')}/{_get(o, 'spec.scaleTargetRef.name')}",
        ),
        _c("Targets", lambda o: "<unknown>"),
        _c("MinPods", lambda o: _get(o, "spec.minReplicas", 1)),
        _c("MaxPods", lambda o: _get(o, "spec.maxReplicas")),
        _c("Replicas", lambda o: _get(o, "status.currentReplicas", 0)),
    ],
    "PodDisruptionBudget": [
        _c("Min Available", lambda o: _get(o, "spec.minAvailable", "N/A")),
        _c("Max Unavailable", lambda o: _get(o, "spec.maxUnavailable", "N/A")),
        _c("Allowed Disruptions", lambda o: _get(o, "status.disruptionsAllowed", 0)),
    ],
    "ServiceAccount": [_c("Secrets", lambda o: len(_get(o, "secrets", [])))],
    "RoleBinding": [_c("Role", lambda o: f"{_get(o, 'roleRef.kind')}/{_get(o, 'roleRef.name')}")],
    "ClusterRoleBinding": [_c("Role", lambda o: f"{_get(o, 'roleRef.kind')}/{_get(o, 'roleRef.name')}")],
    "EndpointSlice": [
        _c("AddressType", lambda o: _get(o, "addressType")),
        _c("Ports", lambda o: ",".join(str(p.get("port")) for p in _get(o, "ports", [])) or "<unset>"),
        _c(
            "Endpoints",
            lambda o: (
                ",".join(a for e in _get(o, "endpoints", []) for a in e.get("addresses", [])) or "<unset>"
            ),
        ),
    ],
    "Pod": [
        _c("Ready", lambda o: "1/1" if _get(o, "status.phase") == "Running" else "0/1", 0),
        _c("Status", lambda o: _get(o, "status.phase"), 0),
        _c("Restarts", lambda o: 0, 0),
        _c("IP", lambda o: _get(o, "status.podIP", "<none>"), 1),
    ],
}


def _printer_column(c: dict[str, Any]) -> Column:
    path, kind = str(c.get("jsonPath", "")), str(c.get("type", "string"))

    def cell(obj: dict[str, Any]) -> Any:
        value = _get(obj, path)
        return age_of(value) if kind == "date" and value != "" else value

    return Column(
        c.get("name", ""),
        cell,
        int(c.get("priority", 0)),
        kind,
        c.get("format", ""),
        c.get("description", ""),
    )


def _columns(rt: ResourceType) -> list[Column]:
    """Name, the kind's own columns, then Age; a CRD with printer columns gets exactly those after Name."""
    if rt.custom and rt.printer_columns:
        return [NAME, *(_printer_column(c) for c in rt.printer_columns)]
    if rt.kind in CREATED_AT_KINDS and not rt.custom:
        return [NAME, CREATED_AT]
    return [NAME, *([] if rt.custom else COLUMNS.get(rt.kind, [])), AGE]


NAME = Column("Name", lambda o: o["metadata"]["name"], format="name")
AGE = Column("Age", _age)
CREATED_AT = Column("Created At", lambda o: o["metadata"].get("creationTimestamp"), type="date")
CREATED_AT_KINDS = {"CustomResourceDefinition", "ClusterRole", "Role"}  # the server's default table for these


def table(rt: ResourceType, objects: list[dict[str, Any]], *, resource_version: str) -> dict[str, Any]:
    columns = _columns(rt)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": c.name,
                "type": c.type,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            }
            for c in columns
        ],
        "rows": [
            {
                "cells": [c.cell(o) for c in columns],
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
