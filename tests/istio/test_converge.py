"""The mesh follows its spec (issue 23): on a four-cluster mesh, a spec with one remote removed, one
added and Bookinfo's details moved to the new one. `plan` names both clusters; `up` without prune
stops before changing anything; `up` with prune converges, in the safe order, and verifies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from typer.testing import CliRunner

from flows.mesh import up_mesh
from meshwright import clients, naming
from meshwright.cli.commands import app
from meshwright.clients import MeshwrightTarget
from meshwright.drift import diff
from meshwright.errors import Refused
from meshwright.models import MeshReport
from meshwright.observe import observe
from meshwright.sandbox.world import World
from meshwright.spec import validate_spec
from tasks.report import PRUNE_TAG
from tests.flows.test_provision_teardown import world_counts

pytestmark = pytest.mark.usefixtures("harness", "meshwright_home")

FOUR: dict[str, Any] = {
    "name": "drifting",
    "target": "sandbox",
    "project": "demo-project",
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


def changed() -> dict[str, Any]:
    """east leaves, north joins and takes details-v1 from east; reviews-v2 moves from west to south."""
    spec = copy.deepcopy(FOUR)
    spec["clusters"] = [c for c in spec["clusters"] if c["name"] != "east"]
    spec["clusters"].append({"name": "north", "location": "northamerica-northeast1-a", "primary": "hub"})
    placement = spec["bookinfo"]["placement"]
    del placement["east"]
    placement["north"] = ["details-v1"]
    del placement["west"]
    placement["south"] = ["reviews-v2", "reviews-v3"]
    return spec


def secrets_in(target: MeshwrightTarget, report: MeshReport, cluster: str) -> list[str]:
    access = next(c for c in report.provision.clusters if c.name == cluster)
    client = clients.cloud(target).kube(access.endpoint, access.ca_certificate)
    listed = kubernetes.client.CoreV1Api(client).list_namespaced_secret(
        naming.ISTIO_NAMESPACE, label_selector=f"{naming.REMOTE_SECRET_LABEL}=true"
    )
    return sorted(str(s.metadata.name) for s in listed.items if s.metadata)


def test_a_cluster_leaves_one_joins_and_a_workload_moves_only_with_prune(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    kubeconfig = str(tmp_path / "kubeconfig")
    first = up_mesh(spec=validate_spec(FOUR), kubeconfig=kubeconfig, connection=target)
    assert first.verification is not None
    assert first.verification.ok
    assert diff(validate_spec(FOUR), observe(validate_spec(FOUR), target)).changes == []  # nothing to change

    wanted = validate_spec(changed())
    drift = diff(wanted, observe(wanted, target))
    lines = [c.line() for c in drift.changes]
    assert "create cluster north (northamerica-northeast1-a, remote)" in lines
    assert any(line.startswith("delete cluster east") for line in lines)
    assert "place workload details-v1 in north" in lines
    assert "remove workload reviews-v2 in west" in lines
    assert "add remote-secret istio-remote-secret-north in hub" in lines

    spec_file = tmp_path / "changed.yaml"
    spec_file.write_text(yaml.safe_dump(changed()))
    target.save("converging", overwrite=True)
    shown = CliRunner().invoke(app, ["plan", str(spec_file), "--connection", "converging"])
    assert shown.exit_code == 0, shown.output
    assert "create cluster north" in shown.output
    assert "delete cluster east" in shown.output
    assert "up deletes east only with --prune" in shown.output
    as_json = CliRunner().invoke(app, ["plan", str(spec_file), "--connection", "converging", "--json"])
    changes = json.loads(as_json.stdout)["changes"]["changes"]
    assert {(c["action"], c["what"]) for c in changes} >= {("create", "north"), ("delete", "east")}

    before = world_counts(sandbox)
    with pytest.raises(Refused, match=r"no longer names: east; nothing was changed.*--prune"):
        up_mesh(spec=wanted, kubeconfig=kubeconfig, connection=target)
    assert world_counts(sandbox) == before

    foreign = {  # a cluster outside the mesh, given to hub's istiod by someone else: not ours to prune
        "metadata": {
            "name": naming.remote_secret_name("elsewhere"),
            "labels": {naming.REMOTE_SECRET_LABEL: "true"},
            "annotations": {naming.REMOTE_SECRET_ANNOTATION: "elsewhere"},
        },
        "stringData": {"elsewhere": "apiVersion: v1\nkind: Config\n"},
    }
    hub = next(c for c in first.provision.clusters if c.name == "hub")
    core = kubernetes.client.CoreV1Api(clients.cloud(target).kube(hub.endpoint, hub.ca_certificate))
    core.create_namespaced_secret(naming.ISTIO_NAMESPACE, foreign)

    after = up_mesh(spec=wanted, kubeconfig=kubeconfig, connection=target, prune=True)
    assert world_counts(sandbox)[0] == ["hub:RUNNING", "north:RUNNING", "south:RUNNING", "west:RUNNING"]
    kept = ("elsewhere", "north", "south", "west")  # east's is gone; the foreign one stays
    assert secrets_in(target, after, "hub") == [naming.remote_secret_name(c) for c in kept]
    rule = clients.cloud(target).firewalls.get(
        project="demo-project", firewall=naming.firewall_name("drifting")
    )
    assert sorted(rule.source_ranges) == sorted(c.pod_cidr for c in after.provision.clusters)
    assert len(rule.source_ranges) == 4
    west = next(b for b in after.bookinfo if b.cluster == "west")
    assert west.removed == ["reviews-v2"]
    assert after.verification is not None
    assert after.verification.ok, after.verification.problems
    assert diff(wanted, observe(wanted, target)).changes == []
    with get_client(sync_client=True) as client:  # the run that pruned says so
        tagged = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[PRUNE_TAG]))
        )
    assert [r.parameters.get("prune") for r in tagged] == [True]
