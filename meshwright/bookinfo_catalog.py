"""What the Bookinfo sample is made of: its workloads, the services they back and whom they call.

Istio's samples/bookinfo (platform/kube/bookinfo.yaml). A leaf: the spec checks placements against
it, meshwright.bookinfo builds manifests from it, and it imports nothing of meshwright.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    """One Bookinfo deployment: the service it backs and its version."""

    name: str
    service: str
    version: str
    calls: tuple[str, ...] = ()


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("productpage-v1", "productpage", "v1", calls=("details", "reviews")),
        Workload("details-v1", "details", "v1"),
        Workload("reviews-v1", "reviews", "v1"),
        Workload("reviews-v2", "reviews", "v2", calls=("ratings",)),
        Workload("reviews-v3", "reviews", "v3", calls=("ratings",)),
        Workload("ratings-v1", "ratings", "v1"),
    )
}

SERVICES: tuple[str, ...] = ("productpage", "details", "reviews", "ratings")
ENTRYPOINT = "productpage-v1"
