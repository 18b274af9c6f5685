"""An Istio upgrade by revision, as `up` runs it on the sandbox: a four-cluster mesh built at one
version is moved to the next while requests keep going through its ingress (one full flow run each)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from flows.mesh import up_mesh
from meshwright.clients import MeshwrightTarget
from meshwright.errors import OperationFailed
from meshwright.models import MeshReport
from meshwright.sandbox.faults import FaultRule
from meshwright.sandbox.world import World
from meshwright.spec import validate_spec
from tasks.verify import get
from tests.istio.support import api, helm_releases

pytestmark = pytest.mark.usefixtures("harness", "meshwright_home")
FOUR: dict[str, Any] = {
    "name": "upgrading",
    "target": "sandbox",
    "project": "demo-project",
    "istio": {"version": "1.29.8"},
    "clusters": [
        {"name": "hub", "location": "us-central1-a"},
        {"name": "west", "location": "us-west1-b", "primary": "hub"},
        {"name": "east", "location": "us-east1-b", "primary": "hub"},
        {"name": "south", "location": "us-south1-a", "primary": "hub"},
    ],
    "bookinfo": {
        "placement": {
            "hub": ["productpage-v1", "reviews-v1", "ratings-v1"],
            "west": ["reviews-v2"],
            "east": ["details-v1"],
            "south": ["reviews-v3"],
        }
    },
}


class Requests(threading.Thread):
    """GET /productpage every 0.2 s until stopped; what failed (not 200, or a part unavailable)."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.sent = f"http://{address}/productpage", threading.Event(), 0
        self.failed: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            status, body = get(self.url, timeout=5.0)
            self.sent += 1
            if status != 200 or b"unavailable" in body:
                said = [line for line in body.decode(errors="replace").split("<") if "unavailable" in line][
                    :2
                ]
                self.failed.append(f"{time.strftime('%X')} {status} {said or body[:80]!r}")
            self.stop.wait(0.2)


def _revisions(target: MeshwrightTarget, report: MeshReport, cluster: str, ns: str) -> set[str]:
    access = next(c for c in report.provision.clusters if c.name == cluster)
    pods = kubernetes.client.CoreV1Api(api(target, access)).list_namespaced_pod(ns).items
    return {(p.metadata.annotations or {}).get("istio.io/rev", "") for p in pods}


def test_up_moves_a_four_cluster_mesh_to_the_new_revision_without_a_failed_request(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    kubeconfig = str(tmp_path / "kubeconfig")
    first = up_mesh(spec=validate_spec(FOUR), kubeconfig=kubeconfig, connection=target)
    assert first.verification is not None
    assert first.verification.traffic is not None
    requests = Requests(first.verification.traffic.address)
    requests.start()
    try:
        newer = validate_spec({**FOUR, "istio": {"version": "1.30.3"}})
        second = up_mesh(spec=newer, kubeconfig=kubeconfig, connection=target)
    finally:
        requests.stop.set()
        requests.join()
    assert requests.sent > 10
    assert requests.failed == []
    hub = next(c for c in second.provision.clusters if c.name == "hub")
    assert sorted(r["name"] for r in helm_releases(target, hub) if r["name"].startswith("istiod")) == [
        "istiod-1-30-3"
    ]
    for cluster in ("hub", "west", "east", "south"):
        assert _revisions(target, second, cluster, "bookinfo") == {"1-30-3"}, cluster
    assert second.verification is not None
    assert second.verification.ok


def test_an_upgrade_whose_new_control_plane_cannot_be_verified_removes_it_and_fails_saying_where(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    spec = {**FOUR, "name": "unverified", "clusters": FOUR["clusters"][:2], "bookinfo": None}
    kubeconfig = str(tmp_path / "kubeconfig")
    first = up_mesh(spec=validate_spec(spec), kubeconfig=kubeconfig, connection=target)
    sandbox.faults.replace([FaultRule(api="kube", cluster="hub", path="/portforward", status=503)])
    with pytest.raises(
        OperationFailed, match=r"^upgrade: upgrade to revision 1-30-3 stopped before the tag moved"
    ):
        up_mesh(
            spec=validate_spec({**spec, "istio": {"version": "1.30.3"}}),
            kubeconfig=kubeconfig,
            connection=target,
        )
    sandbox.faults.replace([])
    for cluster in ("hub", "west"):
        access = next(c for c in first.provision.clusters if c.name == cluster)
        istiods = sorted(r["name"] for r in helm_releases(target, access) if r["name"].startswith("istiod"))
        assert istiods == ["istiod-1-29-8"], cluster
