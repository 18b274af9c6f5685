"""Thin handlers: unpack the request, call a model verb, hand back JSON."""

from __future__ import annotations

from typing import Any

from meshwright.sandbox.gcp.compute import Compute
from meshwright.sandbox.gcp.gke import Gke
from meshwright.sandbox.http import Request


def create_cluster(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    p, loc = r.params["project"], r.params["location"]
    return gke.create_cluster(p, loc, r.json(), network_exists=lambda n: compute.network_exists(p, n))


def get_cluster(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return gke.get_cluster(r.params["project"], r.params["location"], r.params["cluster"])


def list_clusters(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return gke.list_clusters(r.params["project"], r.params["location"])


def delete_cluster(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return gke.delete_cluster(r.params["project"], r.params["location"], r.params["cluster"])


def get_gke_operation(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return gke.get_operation(r.params["project"], r.params["location"], r.params["operation"])


def list_gke_operations(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return gke.list_operations(r.params["project"], r.params["location"])


def insert_firewall(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return compute.insert_firewall(r.params["project"], r.json())


def get_firewall(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return compute.get_firewall(r.params["project"], r.params["name"])


def list_firewalls(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return compute.list_firewalls(r.params["project"], where=r.query.get("filter"))


def patch_firewall(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return compute.patch_firewall(r.params["project"], r.params["name"], r.json())


def update_firewall(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return compute.patch_firewall(r.params["project"], r.params["name"], r.json(), replace=True)


def delete_firewall(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return compute.delete_firewall(r.params["project"], r.params["name"])


def get_global_operation(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return compute.get_operation(r.params["project"], r.params["operation"])


def list_global_operations(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return compute.list_operations(r.params["project"], where=r.query.get("filter"))


def get_network(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return compute.get_network(r.params["project"], r.params["name"])


def list_networks(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return compute.list_networks(r.params["project"], where=r.query.get("filter"))


def insert_network(gke: Gke, compute: Compute, r: Request) -> dict[str, Any]:
    return compute.insert_network(r.params["project"], r.json())
