"""Full flow runs on the sandbox (few: they are slow): up, faults, reruns, down, reaper, smoke test."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.provision import provision_mesh
from flows.reap import reap_expired
from flows.smoke import mesh_smoke_test
from flows.teardown import teardown_mesh
from meshwright import clients, trust
from meshwright.clients import MeshwrightTarget
from meshwright.errors import OperationFailed, PermanentError, SpecInvalid
from meshwright.sandbox.faults import FaultRule
from meshwright.sandbox.kube.fleet import operator_token
from meshwright.sandbox.world import World
from meshwright.spec import Target, load_spec

SPEC = {
    "name": "flowmesh",
    "project": "demo-project",
    "ttl": "1h",
    "clusters": [
        {"name": "central", "location": "us-central1-a", "pod_cidr": "10.8.0.0/14"},
        {"name": "west", "location": "us-west1-b", "primary": "central"},
        {"name": "east", "location": "us-east1-b", "primary": "central"},
    ],
}


@pytest.fixture
def spec_file(tmp_path: Path) -> str:
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return str(path)


def world_counts(world: World) -> tuple[list[str], list[str]]:
    """The project's clusters (name:STATUS) and firewall rules, as the real clients see them."""
    cloud = clients.cloud(MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(world.layout.root)))
    listed = cloud.container.list_clusters(parent="projects/demo-project/locations/-").clusters
    rules = cloud.firewalls.list(project="demo-project")
    return sorted(f"{c.name}:{c.status.name}" for c in listed), sorted(
        f"demo-project/{r.name}" for r in rules
    )


def forwarding_rules(world: World) -> list[str]:
    """The project's forwarding rules in every region (what GKE made for LoadBalancer Services)."""
    cloud = clients.cloud(MeshwrightTarget(target=Target.SANDBOX, sandbox_state=str(world.layout.root)))
    listed = cloud.forwarding_rules.aggregated_list(project="demo-project")
    return sorted(f"{region}/{r.name}" for region, scoped in listed for r in scoped.forwarding_rules)


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_up_then_down_and_no_secret_leaks(
    sandbox: World, target: MeshwrightTarget, spec_file: str, tmp_path: Path, prefect_storage: Path
) -> None:
    kubeconfig, recorder = tmp_path / "kc", Recorder()
    logging.getLogger("prefect").addHandler(recorder)
    try:
        report = provision_mesh(spec=spec_file, kubeconfig=str(kubeconfig), connection=target)
    finally:
        logging.getLogger("prefect").removeHandler(recorder)
    assert [c.name for c in report.clusters] == ["central", "west", "east"]
    assert {c.status for c in report.clusters} == {"RUNNING"}
    assert report.firewall.action == "created"
    assert sorted(report.firewall.source_ranges) == sorted(c.pod_cidr for c in report.clusters)
    assert all(s.finished >= s.started for s in report.steps)
    assert world_counts(sandbox) == (
        ["central:RUNNING", "east:RUNNING", "west:RUNNING"],
        ["demo-project/meshwright-flowmesh-pods"],
    )
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["mesh-flowmesh"]))
        )
        table = json.loads(str(artifacts[0].data))
        assert [row["cluster"] for row in table] == ["central", "west", "east"]
    secrets = [
        operator_token(sandbox.layout),
        *(p.read_text().splitlines()[1] for p in sandbox.layout.root.rglob("ca.key")),
    ]
    searched = (
        "\n".join(recorder.lines)
        + repr(artifacts)
        + report.model_dump_json()
        + "".join(p.read_text(errors="ignore") for p in prefect_storage.rglob("*") if p.is_file())
    )
    assert any("kubeconfig with contexts central, west, east" in line for line in recorder.lines), (
        recorder.lines[:20]
    )
    assert all(secret not in searched for secret in secrets)
    assert operator_token(sandbox.layout) in kubeconfig.read_text()

    down = teardown_mesh(spec=spec_file, kubeconfig=str(kubeconfig), connection=target)
    assert down.deleted_clusters == ["central", "east", "west"]
    assert down.firewall == "deleted"
    assert world_counts(sandbox) == ([], [])
    assert not kubeconfig.exists()
    again = teardown_mesh(spec=spec_file, wait=False, connection=target)
    assert (again.deleted_clusters, again.firewall) == ([], "absent")


def test_transient_faults_are_retried_until_the_mesh_is_up(
    sandbox: World, target: MeshwrightTarget, spec_file: str
) -> None:
    sandbox.faults.replace(
        [
            FaultRule(api="gke", method="POST", path="/clusters$", status=503, times=2),
            FaultRule(api="gke", method="GET", path="/locations/-/clusters$", status=429, times=3),
            FaultRule(api="compute", method="POST", status=503, times=1),
            # Compute's concurrent operation quota (cloud.google.com/compute/operations-quota)
            FaultRule(
                api="compute",
                method="POST",
                path="/firewalls$",
                status=403,
                message="Rate Limit Exceeded",
                reason="rateLimitExceeded",
                times=2,
            ),
        ]
    )
    report = provision_mesh(spec=spec_file, connection=target)
    assert len(report.clusters) == 3
    assert [r["fired"] for r in sandbox.faults.describe()] == [2, 3, 1, 2]


def test_failed_create_fails_the_run_and_a_rerun_converges(
    sandbox: World, target: MeshwrightTarget, spec_file: str
) -> None:
    quota = "Insufficient regional quota to satisfy request: resource CPUS"
    sandbox.faults.replace(
        [FaultRule(api="gke", operation="CREATE_CLUSTER", cluster="east", fail=quota, times=1)]
    )
    with pytest.raises(OperationFailed, match=rf"wait_cluster \[east\]: {quota}"):
        provision_mesh(spec=spec_file, connection=target)
    assert "east:ERROR" in world_counts(sandbox)[0]
    assert world_counts(sandbox)[1] == []
    report = provision_mesh(spec=spec_file, connection=target)
    assert world_counts(sandbox) == (
        ["central:RUNNING", "east:RUNNING", "west:RUNNING"],
        ["demo-project/meshwright-flowmesh-pods"],
    )
    assert len(report.clusters) == 3


def test_crash_after_clusters_exist_then_rerun_converges(
    sandbox: World, target: MeshwrightTarget, spec_file: str
) -> None:
    sandbox.faults.replace(
        [FaultRule(api="compute", operation="insert", fail="Required 'compute.firewalls.create' permission")]
    )
    with pytest.raises(PermanentError, match="ensure_firewall"):
        provision_mesh(spec=spec_file, connection=target)
    assert world_counts(sandbox) == (["central:RUNNING", "east:RUNNING", "west:RUNNING"], [])
    sandbox.faults.replace([])
    clients.reset_cache()
    cloud = clients.cloud(target)
    first = cloud.container.list_clusters(parent="projects/demo-project/locations/-").clusters
    expiry = {c.resource_labels["meshwright-expires"] for c in first}
    time.sleep(1.1)  # a rerun a second later: a new run's "now + ttl" would differ
    provision_mesh(spec=spec_file, connection=target)
    assert world_counts(sandbox) == (
        ["central:RUNNING", "east:RUNNING", "west:RUNNING"],
        ["demo-project/meshwright-flowmesh-pods"],
    )
    rule = cloud.firewalls.get(project="demo-project", firewall="meshwright-flowmesh-pods")
    assert len(expiry) == 1
    assert rule.description.endswith(f"expires={expiry.pop()}")  # the mesh's own, kept


def test_invalid_spec_creates_nothing(sandbox: World, target: MeshwrightTarget, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                **SPEC,
                "clusters": [
                    *SPEC["clusters"][:2],
                    {"name": "east", "location": "us-east1-b", "primary": "centrl"},
                ],
            }
        )
    )
    with pytest.raises(SpecInvalid, match=r"clusters\[2\]\.primary: names no cluster of this mesh"):
        provision_mesh(spec=str(bad), connection=target)
    assert world_counts(sandbox) == ([], [])


def test_smoke_test_always_tears_down_and_reaper_sweeps_expired(
    sandbox: World, target: MeshwrightTarget, spec_file: str
) -> None:
    sandbox.faults.replace([FaultRule(api="gke", operation="CREATE_CLUSTER", cluster="west", fail="boom")])
    target.save("flow-sandbox", overwrite=True)
    with pytest.raises(OperationFailed, match="boom"):
        mesh_smoke_test(spec=spec_file, connection="flow-sandbox")
    assert world_counts(sandbox) == ([], [])
    sandbox.faults.replace([])
    provision_mesh(spec=spec_file, connection=target)
    trust.ensure_root(load_spec(spec_file), trust.store_for("flowmesh"))  # as up_mesh makes it
    kept = reap_expired(project="demo-project", target=Target.SANDBOX, connection=target)
    assert kept == {"clusters": [], "firewalls": [], "load_balancers": [], "roots": []}

    reaped = reap_expired(
        project="demo-project", target=Target.SANDBOX, now=time.time() + 2 * 3600, connection="flow-sandbox"
    )
    assert reaped == {
        "clusters": ["central", "east", "west"],
        "firewalls": ["meshwright-flowmesh-pods"],
        "load_balancers": [],
        "roots": ["flowmesh"],  # every cluster of the mesh went, and the spec keeps no root
    }
    assert trust.store_for("flowmesh").load() is None
    assert "MESHWRIGHT_SANDBOX_STATE" not in os.environ  # found through the block, not the environment
