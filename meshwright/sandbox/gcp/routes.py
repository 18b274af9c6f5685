"""URL table of the GKE v1, Compute v1, IAM v1 and Service Usage v1 emulators: (method, path regex,
handler, api). All of them answer on the sandbox's one endpoint; their paths do not overlap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshwright.sandbox.faults import Api
from meshwright.sandbox.gcp import handlers as h
from meshwright.sandbox.http import Request

GcpHandler = Callable[[h.Backends, Request], dict[str, Any]]

_SEG = r"[^/]+"
GKE = rf"/v1/projects/(?P<project>{_SEG})/locations/(?P<location>{_SEG})"
# The older form of the same API, still in the discovery document: projects.zones.clusters.*
ZONES = rf"/v1/projects/(?P<project>{_SEG})/zones/(?P<location>{_SEG})"
GCE = rf"/compute/v1/projects/(?P<project>{_SEG})/global"
REGION = rf"/compute/v1/projects/(?P<project>{_SEG})/regions/(?P<region>{_SEG})"
ZONE = rf"/compute/v1/projects/(?P<project>{_SEG})/zones/(?P<zone>{_SEG})"
IAM = rf"/v1/projects/(?P<project>{_SEG})/serviceAccounts"
SERVICES = rf"/v1/projects/(?P<project>{_SEG})/services/(?P<service>[^/:]+)"

ROUTES: list[tuple[str, str, GcpHandler, Api]] = [
    ("POST", f"{GKE}/clusters", h.create_cluster, "gke"),
    ("POST", rf"{GKE}/clusters/(?P<cluster>[^/:]+):setResourceLabels", h.set_resource_labels, "gke"),
    ("GET", f"{GKE}/clusters", h.list_clusters, "gke"),
    ("GET", rf"{GKE}/clusters/(?P<cluster>{_SEG})", h.get_cluster, "gke"),
    ("DELETE", rf"{GKE}/clusters/(?P<cluster>{_SEG})", h.delete_cluster, "gke"),
    ("GET", f"{GKE}/operations", h.list_gke_operations, "gke"),
    ("GET", rf"{GKE}/operations/(?P<operation>{_SEG})", h.get_gke_operation, "gke"),
    ("POST", f"{ZONES}/clusters", h.create_cluster, "gke"),
    ("GET", f"{ZONES}/clusters", h.list_clusters, "gke"),
    ("GET", rf"{ZONES}/clusters/(?P<cluster>{_SEG})", h.get_cluster, "gke"),
    ("DELETE", rf"{ZONES}/clusters/(?P<cluster>{_SEG})", h.delete_cluster, "gke"),
    ("GET", f"{ZONES}/operations", h.list_gke_operations, "gke"),
    ("GET", rf"{ZONES}/operations/(?P<operation>{_SEG})", h.get_gke_operation, "gke"),
    ("POST", f"{GCE}/firewalls", h.insert_firewall, "compute"),
    ("GET", f"{GCE}/firewalls", h.list_firewalls, "compute"),
    ("GET", rf"{GCE}/firewalls/(?P<name>{_SEG})", h.get_firewall, "compute"),
    ("PATCH", rf"{GCE}/firewalls/(?P<name>{_SEG})", h.patch_firewall, "compute"),
    ("PUT", rf"{GCE}/firewalls/(?P<name>{_SEG})", h.update_firewall, "compute"),
    ("DELETE", rf"{GCE}/firewalls/(?P<name>{_SEG})", h.delete_firewall, "compute"),
    ("GET", f"{GCE}/operations", h.list_global_operations, "compute"),
    ("GET", rf"{GCE}/operations/(?P<operation>{_SEG})", h.get_global_operation, "compute"),
    # wait: the operation is already DONE when it is returned, so waiting is a get.
    ("POST", rf"{GCE}/operations/(?P<operation>{_SEG})/wait", h.get_global_operation, "compute"),
    ("GET", f"{GCE}/networks", h.list_networks, "compute"),
    ("POST", f"{GCE}/networks", h.insert_network, "compute"),
    ("GET", rf"{GCE}/networks/(?P<name>{_SEG})", h.get_network, "compute"),
    ("GET", rf"/compute/v1/projects/(?P<project>{_SEG})", h.get_project, "compute"),
    ("GET", REGION, h.get_region, "compute"),
    ("POST", f"{REGION}/subnetworks", h.insert_subnetwork, "compute"),
    ("GET", f"{REGION}/subnetworks", h.list_subnetworks, "compute"),
    ("GET", rf"{REGION}/subnetworks/(?P<name>{_SEG})", h.get_subnetwork, "compute"),
    # A regional operation is filed with the global ones (names are unique): the same lookup answers.
    ("GET", rf"{REGION}/operations/(?P<operation>{_SEG})", h.get_global_operation, "compute"),
    ("POST", rf"{REGION}/operations/(?P<operation>{_SEG})/wait", h.get_global_operation, "compute"),
    ("GET", f"{REGION}/forwardingRules", h.list_forwarding_rules, "compute"),
    ("GET", rf"{REGION}/forwardingRules/(?P<name>{_SEG})", h.get_forwarding_rule, "compute"),
    ("DELETE", rf"{REGION}/forwardingRules/(?P<name>{_SEG})", h.delete_forwarding_rule, "compute"),
    (
        "GET",
        rf"/compute/v1/projects/(?P<project>{_SEG})/aggregated/forwardingRules",
        h.aggregated_forwarding_rules,
        "compute",
    ),
    ("GET", rf"{ZONE}/machineTypes/(?P<name>{_SEG})", h.get_machine_type, "compute"),
    ("GET", IAM, h.list_service_accounts, "iam"),
    ("POST", IAM, h.create_service_account, "iam"),
    ("GET", rf"{IAM}/(?P<email>{_SEG})", h.get_service_account, "iam"),
    ("DELETE", rf"{IAM}/(?P<email>{_SEG})", h.delete_service_account, "iam"),
    ("GET", SERVICES, h.get_service, "serviceusage"),
    ("POST", f"{SERVICES}:enable", h.enable_service, "serviceusage"),
    ("POST", f"{SERVICES}:disable", h.disable_service, "serviceusage"),
]
