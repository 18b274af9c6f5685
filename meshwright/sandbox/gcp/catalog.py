"""What Google's catalog says about regions, zones, machine types, quotas and services. Pure data.

The sandbox's GKE and Compute read the same facts, so a quota that Compute's `regions.get` reports
is the one GKE's create is checked against, and a machine type has one vCPU count everywhere.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

# Zones of the regions the examples and tests use (Compute `regions.get` lists them; e.g.
# us-central1 has a, b, c and f, us-east1 has b, c and d). Any other region gets a, b and c.
ZONES = {
    "us-central1": ("a", "b", "c", "f"),
    "us-east1": ("b", "c", "d"),
    "us-east4": ("a", "b", "c"),
    "us-west1": ("a", "b", "c"),
    "europe-west1": ("b", "c", "d"),
    "europe-west4": ("a", "b", "c"),
    "asia-east1": ("a", "b", "c"),
}
# A regional GKE cluster puts its node pools in three zones of its region unless told otherwise:
# "nine nodes evenly spread across three zones" for the default pool of 3
# (https://cloud.google.com/kubernetes-engine/docs/concepts/regional-clusters).
REGIONAL_NODE_ZONES = 3

# The primary ranges of an auto mode VPC's subnets, one per region, all inside 10.128.0.0/9
# (https://cloud.google.com/vpc/docs/subnets#ip-ranges, "Auto mode IPv4 ranges").
AUTO_MODE_BLOCK = ipaddress.IPv4Network("10.128.0.0/9")
POOL = ipaddress.IPv4Network("10.0.0.0/8")  # where GKE takes the ranges it chooses itself
AUTO_RANGES = {
    "us-central1": "10.128.0.0/20",
    "europe-west1": "10.132.0.0/20",
    "us-west1": "10.138.0.0/20",
    "asia-east1": "10.140.0.0/20",
    "us-east1": "10.142.0.0/20",
    "us-east4": "10.150.0.0/20",
    "europe-west4": "10.164.0.0/20",
}

# Machine types: vCPUs of the predefined shapes, by series and name
# (https://cloud.google.com/compute/docs/general-purpose-machines). Shared-core ones stand alone.
SHARED_CORE = {"e2-micro": 2, "e2-small": 2, "e2-medium": 2, "f1-micro": 1, "g1-small": 1}
_PREDEFINED = re.compile(
    r"(?:e2|n1|n2|n2d|n4|c2|c2d|c3|c3d|c4|t2d|t2a)-(?:standard|highmem|highcpu)-([0-9]{1,3})"
)
_CUSTOM = re.compile(r"(?:(?:e2|n2|n2d|n4)-)?custom-([0-9]{1,3})-([0-9]{3,7})(?:-ext)?")
_MEMORY_PER_CPU_MB = {"standard": 4096, "highmem": 8192, "highcpu": 1024}

# Regional quotas of a new sandbox project: generous enough for the demos and the benchmarks
# (20 clusters of 3 x e2-standard-4 nodes across five regions). `--quotas FILE` sets others.
DEFAULT_QUOTAS = {"CPUS": 2000.0, "IN_USE_ADDRESSES": 2000.0, "SSD_TOTAL_GB": 200_000.0}
# GKE's node boot disk when none is named: 100 GB of pd-balanced, which counts against SSD_TOTAL_GB
# (a 3-node pool asks SSD_TOTAL_GB '300.0' in GKE's quota error; hashicorp-education/
# learn-terraform-provision-gke-cluster#22 on the SSD quota a default pool meets).
DEFAULT_DISK_GB = 100

# The APIs the sandbox serves, as Service Usage names them, with their titles (used in
# SERVICE_DISABLED answers: "Kubernetes Engine API has not been used in project ...").
SERVICES = {
    "container.googleapis.com": "Kubernetes Engine API",
    "compute.googleapis.com": "Compute Engine API",
    "iam.googleapis.com": "Identity and Access Management (IAM) API",
}
API_SERVICE = {
    "gke": "container.googleapis.com",
    "compute": "compute.googleapis.com",
    "iam": "iam.googleapis.com",
}


def region_of(location: str) -> str:
    """us-central1-a -> us-central1; a region is its own region."""
    return location.rsplit("-", 1)[0] if location.count("-") == 2 else location


def zones(region: str) -> list[str]:
    return [f"{region}-{z}" for z in ZONES.get(region, ("a", "b", "c"))]


def node_zones(location: str) -> list[str]:
    """Where a cluster's nodes run: its zone, or the first three zones of its region."""
    return [location] if location.count("-") == 2 else zones(location)[:REGIONAL_NODE_ZONES]


def guest_cpus(machine_type: str) -> int | None:
    """vCPUs of a machine type, or None for a name Compute does not know."""
    if machine_type in SHARED_CORE:
        return SHARED_CORE[machine_type]
    found = _PREDEFINED.fullmatch(machine_type) or _CUSTOM.fullmatch(machine_type)
    return int(found.group(1)) if found and int(found.group(1)) > 0 else None


def memory_mb(machine_type: str) -> int:
    custom = _CUSTOM.fullmatch(machine_type)
    if custom:
        return int(custom.group(2))
    kind = machine_type.split("-")[1] if machine_type.count("-") == 2 else "standard"
    return (guest_cpus(machine_type) or 1) * _MEMORY_PER_CPU_MB.get(kind, 4096)


def auto_range(region: str) -> str:
    """The primary range of an auto mode network's subnet in `region` (a stable /20 for unknown ones)."""
    if region in AUTO_RANGES:
        return AUTO_RANGES[region]
    taken = {ipaddress.IPv4Network(r) for r in AUTO_RANGES.values()}
    slots = list(AUTO_MODE_BLOCK.subnets(new_prefix=20))
    start = int(hashlib.sha256(region.encode()).hexdigest(), 16) % len(slots)
    return str(next(s for s in slots[start:] + slots[:start] if s not in taken))


def project_number(project: str) -> str:
    """A project's number: 12 digits, stable for its id (Google's are assigned at creation)."""
    return str(100_000_000_000 + int(hashlib.sha256(project.encode()).hexdigest(), 16) % 900_000_000_000)


def default_service_account(project: str) -> str:
    """The Compute Engine default service account, which GKE's nodes use unless told otherwise."""
    return f"{project_number(project)}-compute@developer.gserviceaccount.com"
