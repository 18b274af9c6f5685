"""Thin handlers: unpack the request, call a model verb, hand back JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshwright.sandbox.gcp.compute import Compute
from meshwright.sandbox.gcp.gke import Gke
from meshwright.sandbox.gcp.projects import Projects
from meshwright.sandbox.http import Request


@dataclass(frozen=True)
class Backends:
    """The models a handler may call: GKE, Compute, and what belongs to projects (IAM, Service Usage)."""

    gke: Gke
    compute: Compute
    projects: Projects


def create_cluster(b: Backends, r: Request) -> dict[str, Any]:
    return b.gke.create_cluster(r.params["project"], r.params["location"], r.json())


def get_cluster(b: Backends, r: Request) -> dict[str, Any]:
    return b.gke.get_cluster(r.params["project"], r.params["location"], r.params["cluster"])


def list_clusters(b: Backends, r: Request) -> dict[str, Any]:
    return b.gke.list_clusters(r.params["project"], r.params["location"])


def delete_cluster(b: Backends, r: Request) -> dict[str, Any]:
    return b.gke.delete_cluster(r.params["project"], r.params["location"], r.params["cluster"])


def set_resource_labels(b: Backends, r: Request) -> dict[str, Any]:
    p = r.params
    return b.gke.set_resource_labels(p["project"], p["location"], p["cluster"], r.json() or {})


def get_gke_operation(b: Backends, r: Request) -> dict[str, Any]:
    return b.gke.get_operation(r.params["project"], r.params["location"], r.params["operation"])


def list_gke_operations(b: Backends, r: Request) -> dict[str, Any]:
    return b.gke.list_operations(r.params["project"], r.params["location"])


def insert_firewall(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.insert_firewall(r.params["project"], r.json())


def get_firewall(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.get_firewall(r.params["project"], r.params["name"])


def list_firewalls(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.list_firewalls(r.params["project"], where=r.query.get("filter"))


def patch_firewall(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.patch_firewall(r.params["project"], r.params["name"], r.json())


def update_firewall(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.patch_firewall(r.params["project"], r.params["name"], r.json(), replace=True)


def delete_firewall(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.delete_firewall(r.params["project"], r.params["name"])


def get_global_operation(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.get_operation(r.params["project"], r.params["operation"])


def list_global_operations(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.list_operations(r.params["project"], where=r.query.get("filter"))


def get_network(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.get_network(r.params["project"], r.params["name"])


def list_networks(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.list_networks(r.params["project"], where=r.query.get("filter"))


def insert_network(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.insert_network(r.params["project"], r.json())


def get_forwarding_rule(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.get_forwarding_rule(r.params["project"], r.params["region"], r.params["name"])


def list_forwarding_rules(b: Backends, r: Request) -> dict[str, Any]:
    where = r.query.get("filter")
    return b.compute.list_forwarding_rules(r.params["project"], r.params["region"], where=where)


def aggregated_forwarding_rules(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.aggregated_forwarding_rules(r.params["project"], where=r.query.get("filter"))


def delete_forwarding_rule(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.delete_forwarding_rule(r.params["project"], r.params["region"], r.params["name"])


def insert_subnetwork(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.insert_subnetwork(r.params["project"], r.params["region"], r.json())


def get_subnetwork(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.get_subnetwork(r.params["project"], r.params["region"], r.params["name"])


def list_subnetworks(b: Backends, r: Request) -> dict[str, Any]:
    return b.compute.list_subnetworks(r.params["project"], r.params["region"], where=r.query.get("filter"))


def get_region(b: Backends, r: Request) -> dict[str, Any]:
    return b.projects.get_region(r.params["project"], r.params["region"])


def get_machine_type(b: Backends, r: Request) -> dict[str, Any]:
    return b.projects.get_machine_type(r.params["project"], r.params["zone"], r.params["name"])


def get_project(b: Backends, r: Request) -> dict[str, Any]:
    return b.projects.get_project(r.params["project"])


def get_service_account(b: Backends, r: Request) -> dict[str, Any]:
    return b.projects.get_account(r.params["project"], r.params["email"])


def list_service_accounts(b: Backends, r: Request) -> dict[str, Any]:
    return b.projects.list_accounts(r.params["project"])


def create_service_account(b: Backends, r: Request) -> dict[str, Any]:
    return b.projects.create_account(r.params["project"], r.json())


def delete_service_account(b: Backends, r: Request) -> dict[str, Any]:
    return b.projects.delete_account(r.params["project"], r.params["email"])


def get_service(b: Backends, r: Request) -> dict[str, Any]:
    return b.projects.get_service(r.params["project"], r.params["service"])


def enable_service(b: Backends, r: Request) -> dict[str, Any]:
    return b.projects.set_service(r.params["project"], r.params["service"], enabled=True)


def disable_service(b: Backends, r: Request) -> dict[str, Any]:
    return b.projects.set_service(r.params["project"], r.params["service"], enabled=False)
