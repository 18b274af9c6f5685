"""URL table of the GKE v1 and Compute v1 emulators: (method, path regex, handler, api)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshwright.sandbox.gcp import handlers as h
from meshwright.sandbox.gcp.compute import Compute
from meshwright.sandbox.gcp.gke import Gke
from meshwright.sandbox.http import Request

GcpHandler = Callable[[Gke, Compute, Request], dict[str, Any]]

_SEG = r"[^/]+"
GKE = rf"/v1/projects/(?P<project>{_SEG})/locations/(?P<location>{_SEG})"
# The older form of the same API, still in the discovery document: projects.zones.clusters.*
ZONES = rf"/v1/projects/(?P<project>{_SEG})/zones/(?P<location>{_SEG})"
GCE = rf"/compute/v1/projects/(?P<project>{_SEG})/global"

ROUTES: list[tuple[str, str, GcpHandler, str]] = [
    ("POST", f"{GKE}/clusters", h.create_cluster, "gke"),
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
]
