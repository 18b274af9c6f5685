"""The ephemeral mesh test as one flow run on the sandbox: a fault at verification fails the run
after the teardown, nothing is left, and the markdown report says what happened."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import uuid4

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import ArtifactSort
from prefect.states import Cancelled, Crashed

from flows.provision import provision_mesh
from flows.smoke import _teardown_hook, mesh_smoke_test
from meshwright import trust
from meshwright.clients import MeshwrightTarget
from meshwright.errors import MeshwrightError
from meshwright.sandbox.faults import FaultRule
from meshwright.sandbox.world import World
from meshwright.spec import validate_spec
from tests.flows.test_provision_teardown import forwarding_rules, world_counts

SPEC = {
    "name": "smokemesh",
    "project": "demo-project",
    "ttl": "1h",
    "clusters": [
        {"name": "central", "location": "us-central1-a"},
        {"name": "west", "location": "us-west1-b", "primary": "central"},
    ],
}


def latest_markdown(key: str) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC
        )
    return str(found[0].data)


def test_fault_at_verification_fails_the_run_after_teardown_leaving_nothing(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    spec = tmp_path / "mesh.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    sandbox.faults.replace([FaultRule(api="kube", cluster="central", path="/portforward", status=503)])
    with pytest.raises(MeshwrightError, match="clusterz") as failed:
        mesh_smoke_test(spec=str(spec), connection=target)
    assert world_counts(sandbox) == ([], [])  # no cluster, no firewall rule (k8s-fw- ones neither)
    assert forwarding_rules(sandbox) == []
    report = latest_markdown("mesh-smokemesh-smoke-test")
    # central's east-west gateway had its forwarding rule while the mesh ran; it went before central
    released = re.search(r"Gateway load balancers deleted before their clusters: (\d+)\.", report)
    assert released, report
    assert int(released[1]) >= 1
    assert "# Smoke test of mesh `smokemesh`: **failed**" in report
    stages = re.findall(r"^\| (\w+) \| [\d.]+ \| (\w+)", report, re.MULTILINE)
    assert stages[-1] == ("down", "ok")
    assert stages[-2][1] == "failed"  # up (which verifies what it built) or the verify stage
    assert "Deleted clusters: central, west" in report
    assert str(failed.value).splitlines()[0][:40] in report.replace("\\|", "|")


def test_an_upgrade_rehearsal_with_drills_passes_with_no_failed_request_and_leaves_nothing(
    sandbox: World, target: MeshwrightTarget
) -> None:
    placed = {"central": ["productpage-v1", "details-v1", "reviews-v1", "ratings-v1"], "west": ["reviews-v2"]}
    result = mesh_smoke_test(
        spec=validate_spec({**SPEC, "bookinfo": {"placement": placed}}),
        connection=target,
        upgrade_from="1.29.8",
        drills=["failover", "rotate-secrets"],
    )
    assert result.passed
    assert [s.step for s in result.stages] == ["up", "upgrade", "drills", "down"]
    assert result.upgrade is not None
    assert (result.upgrade.from_version, result.upgrade.to_version) == ("1.29.8", "1.30.3")
    assert result.upgrade.requests > 5
    assert result.upgrade.failed == 0
    assert "move tag to 1-30-3" in [p.phase for p in result.upgrade.phases]
    assert world_counts(sandbox) == ([], [])
    assert forwarding_rules(sandbox) == []
    assert trust.store_for("smokemesh").load() is None  # the root went with the mesh
    report = latest_markdown(result.report_key)
    assert "**passed**" in report
    assert "## Upgrade 1.29.8 → 1.30.3" in report
    assert re.search(r"^\| restart workloads onto 1-30-3 \| [\d.]+ \| \d+ \| 0 \|$", report, re.MULTILINE), (
        report
    )
    assert "| central | istiod-1-30-3 | " in report
    assert "Roots: central `" in report
    assert re.search(r"^\| failover \| [^|]+ \| yes \|", report, re.MULTILINE), report
    assert re.search(r"^\| rotate-secrets \| [^|]+ \| yes \|", report, re.MULTILINE), report


@pytest.mark.parametrize("ended", [Cancelled, Crashed])
def test_cancelled_or_crashed_run_hook_starts_the_teardown(
    sandbox: World, target: MeshwrightTarget, ended: type
) -> None:
    provision_mesh(spec=validate_spec(SPEC), connection=target)
    target.save("smoke-hook", overwrite=True)
    run = FlowRun(flow_id=uuid4(), parameters={"spec": SPEC, "connection": "smoke-hook"})
    _teardown_hook(mesh_smoke_test, run, ended())
    clusters, rules = world_counts(sandbox)
    assert rules == []
    assert all(c.endswith(":STOPPING") for c in clusters) or clusters == [], clusters
