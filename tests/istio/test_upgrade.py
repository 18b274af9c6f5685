"""An Istio upgrade by revision, as `up` runs it on the sandbox: a four-cluster mesh built at one
version is moved to the next while requests keep going through its ingress (one full flow run each)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from prefect.settings import PREFECT_API_URL

from flows.mesh import up_mesh
from meshwright.cli import runs
from meshwright.cli.runs import RunError
from meshwright.clients import MeshwrightTarget
from meshwright.errors import OperationFailed
from meshwright.models import MeshReport
from meshwright.sandbox.faults import FaultRule
from meshwright.sandbox.world import World
from meshwright.spec import validate_spec
from meshwright.traffic import PAGE_PATH, good
from tasks.traffic import Load
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


def _two_clusters_up(
    target: MeshwrightTarget, tmp_path: Path, name: str
) -> tuple[dict[str, Any], str, MeshReport]:
    """Hub and west at 1.29.8, without Bookinfo: the spec, its kubeconfig and what `up` built."""
    spec = {**FOUR, "name": name, "clusters": FOUR["clusters"][:2], "bookinfo": None}
    kubeconfig = str(tmp_path / "kubeconfig")
    return spec, kubeconfig, up_mesh(spec=validate_spec(spec), kubeconfig=kubeconfig, connection=target)


def _istiods(target: MeshwrightTarget, report: MeshReport, cluster: str) -> list[str]:
    access = next(c for c in report.provision.clusters if c.name == cluster)
    return sorted(r["name"] for r in helm_releases(target, access) if r["name"].startswith("istiod"))


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
    newer = validate_spec({**FOUR, "istio": {"version": "1.30.3"}})
    with Load(str(first.verification.traffic.address), paths=[PAGE_PATH], pace=0.2) as requests:
        second = up_mesh(spec=newer, kubeconfig=kubeconfig, connection=target)
    assert len(requests.seen()) > 10
    assert [
        f"{time.strftime('%X', time.gmtime(t))} {r.status} {r.first_line}"
        for t, r in requests.seen()
        if not good(r)
    ] == []
    assert second.upgrade is not None
    assert [p.step for p in second.upgrade.phases] == [
        "install revision 1-30-3",
        "verify control plane 1-30-3",
        "move tag to 1-30-3",
        "restart workloads onto 1-30-3",
        "verify mesh",
        "remove revision 1-29-8",
    ]
    assert _istiods(target, second, "hub") == ["istiod-1-30-3"]
    for cluster in ("hub", "west", "east", "south"):
        assert _revisions(target, second, cluster, "bookinfo") == {"1-30-3"}, cluster
    assert second.verification is not None
    assert second.verification.ok


def test_an_upgrade_whose_new_control_plane_cannot_be_verified_removes_it_and_fails_saying_where(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    spec, kubeconfig, first = _two_clusters_up(target, tmp_path, "unverified")
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
        assert _istiods(target, first, cluster) == ["istiod-1-29-8"], cluster


def _answer_when_paused(mesh: str, decision: str) -> threading.Thread:
    """Answers the mesh's approval point as `meshwright approve` does, once a run waits for it."""

    def answer() -> None:
        with runs.connect(str(PREFECT_API_URL.value())) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    runs.resume_paused(client, mesh, {"decision": decision})
                    return
                except RunError:
                    time.sleep(0.3)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_an_upgrade_rolled_back_at_its_approval_point_keeps_the_old_revision_and_fails_saying_so(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    spec, kubeconfig, first = _two_clusters_up(target, tmp_path, "approving")
    answered = _answer_when_paused("approving", "roll back")
    newer = {**spec, "istio": {"version": "1.30.3", "upgrade": {"approve": True}}}
    with pytest.raises(
        OperationFailed, match=r"rolled back at its approval point \(roll back\); the mesh runs 1-29-8"
    ):
        up_mesh(spec=validate_spec(newer), kubeconfig=kubeconfig, connection=target)
    answered.join()
    for cluster in ("hub", "west"):
        assert _istiods(target, first, cluster) == ["istiod-1-29-8"], cluster
