"""Firewall rule, network preflight and kubeconfig tasks."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from google.api_core import exceptions as gx
from google.cloud import compute_v1

from meshwright import clients, naming
from meshwright.clients import MeshwrightTarget
from meshwright.errors import Conflict, PermanentError
from meshwright.models import ClusterAccess, Timing
from meshwright.observe import observe
from meshwright.sandbox.faults import FaultRule
from meshwright.sandbox.gcp.errors import TOO_MANY_RANGES
from meshwright.sandbox.kube.fleet import operator_token
from meshwright.sandbox.world import World
from meshwright.status import mesh_firewalls
from tasks.access import check_kubeconfig, kubeconfig, remove_kubeconfig, write_kubeconfig
from tasks.network import (
    check_network,
    delete_firewall,
    delete_mesh_firewalls,
    ensure_firewall,
    find_expired_firewalls,
    get_firewall,
)
from tests.support import mesh


def test_firewall_is_created_then_unchanged_then_patched(sandbox: World, target: MeshwrightTarget) -> None:
    spec = mesh()
    first = ensure_firewall.fn(spec, ["10.8.0.0/14", "10.252.0.0/14"], target=target, expires=5000)
    assert (first.name, first.action) == ("meshwright-m1-pods", "created")
    rule = get_firewall(target, "demo-project", "meshwright-m1-pods", step="test")
    assert rule is not None
    assert (rule.priority, rule.direction, list(rule.target_tags)) == (900, "INGRESS", ["meshwright-m1-node"])
    assert sorted(a.I_p_protocol for a in rule.allowed) == ["ah", "esp", "icmp", "sctp", "tcp", "udp"]
    assert rule.description == "meshwright mesh=m1 expires=5000"
    assert (
        ensure_firewall.fn(spec, ["10.252.0.0/14", "10.8.0.0/14"], target=target, expires=5000).action
        == "unchanged"
    )
    patched = ensure_firewall.fn(spec, ["10.8.0.0/14"], target=target, expires=5000)
    assert (patched.action, patched.source_ranges) == ("patched", ["10.8.0.0/14"])
    # The mesh's expiry is settled in preflight (naming.mesh_expiry): a new one (the spec's ttl
    # changed) is the rule's too.
    assert ensure_firewall.fn(spec, ["10.8.0.0/14"], target=target, expires=9999).action == "patched"
    assert get_firewall(target, "demo-project", "meshwright-m1-pods", step="t").description.endswith(
        "expires=9999"
    )


def test_firewall_quota_failure_is_permanent(sandbox: World, target: MeshwrightTarget) -> None:
    sandbox.faults.replace([FaultRule(api="compute", operation="insert", fail="Quota 'FIREWALLS' exceeded.")])
    with pytest.raises(PermanentError, match=r"ensure_firewall: .*Quota 'FIREWALLS' exceeded"):
        ensure_firewall.fn(mesh(), ["10.8.0.0/14"], target=target, expires=None)


def test_delete_and_find_expired_firewalls(sandbox: World, target: MeshwrightTarget) -> None:
    ensure_firewall.fn(mesh(), ["10.8.0.0/14"], target=target, expires=1000)
    ensure_firewall.fn(mesh(name="m2"), ["10.12.0.0/14"], target=target, expires=None)
    assert find_expired_firewalls.fn(target, "demo-project", now=2000) == ["meshwright-m1-pods"]
    assert delete_firewall.fn(target, "demo-project", "meshwright-m1-pods") == "deleted"
    assert delete_firewall.fn(target, "demo-project", "meshwright-m1-pods") == "absent"


RANGES = [f"10.{i * 4}.0.0/14" for i in range(5)]


@pytest.fixture
def two_ranges_a_rule(sandbox: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compute's limit of ranges in one rule, lowered in the sandbox and in meshwright alike."""
    monkeypatch.setattr(sandbox.compute, "max_source_ranges", 2)
    monkeypatch.setattr(naming, "FIREWALL_SOURCE_RANGES_MAX", 2)


def test_compute_refuses_a_rule_with_more_ranges_than_it_takes(
    sandbox: World, target: MeshwrightTarget, two_ranges_a_rule: None
) -> None:
    rule = compute_v1.Firewall(
        name="wide", source_ranges=RANGES, allowed=[compute_v1.Allowed(I_p_protocol="tcp")]
    )
    with pytest.raises(gx.BadRequest) as refused:
        clients.cloud(target).firewalls.insert(project="demo-project", firewall_resource=rule)
    assert TOO_MANY_RANGES.format(field="resource.sourceRanges", limit=2) in str(refused.value)


def test_pod_ranges_past_one_rule_take_several_and_all_go_with_the_mesh(
    sandbox: World, target: MeshwrightTarget, two_ranges_a_rule: None
) -> None:
    made = ensure_firewall.fn(mesh(), RANGES, target=target, expires=1000)
    assert (made.rules, made.action) == (
        ["meshwright-m1-pods", "meshwright-m1-pod1", "meshwright-m1-pod2"],
        "created",
    )
    rules = mesh_firewalls(target, "demo-project", "m1", step="test")
    assert [list(r.source_ranges) for r in rules] == [
        sorted(RANGES)[:2],
        sorted(RANGES)[2:4],
        sorted(RANGES)[4:],
    ]
    assert {r.description for r in rules} == {"meshwright mesh=m1 expires=1000"}
    assert observe(mesh(), target).firewall_sources == sorted(RANGES)
    fewer = ensure_firewall.fn(mesh(), RANGES[:3], target=target, expires=1000)
    assert (fewer.rules, fewer.action) == (["meshwright-m1-pods", "meshwright-m1-pod1"], "patched")
    assert [r.name for r in mesh_firewalls(target, "demo-project", "m1", step="test")] == fewer.rules
    assert sorted(find_expired_firewalls.fn(target, "demo-project", now=2000)) == sorted(
        fewer.rules
    )  # the reaper's
    assert delete_mesh_firewalls.fn(target, "demo-project", "m1") == "deleted"  # teardown's
    assert mesh_firewalls(target, "demo-project", "m1", step="test") == []


def test_missing_network_fails_before_anything_is_created(sandbox: World, target: MeshwrightTarget) -> None:
    with pytest.raises(PermanentError, match="network 'mesh-vpc' does not exist in project demo-project"):
        check_network.fn(mesh(network="mesh-vpc"), target=target)
    assert check_network.fn(mesh(), target=target).mode == "auto"


def access(name: str) -> ClusterAccess:
    return ClusterAccess(
        name=name,
        location="us-central1-a",
        status="RUNNING",
        endpoint="127.0.0.1:1",
        ca_certificate="Q0E=",
        pod_cidr="10.8.0.0/14",
        services_cidr="34.118.224.0/20",
        timing=Timing(step="t", started=0, finished=1),
    )


def test_sandbox_kubeconfig_has_a_context_per_cluster_and_mode_0600(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    path = write_kubeconfig.fn(
        mesh(), [access("central"), access("west")], str(tmp_path / "m1" / "kubeconfig"), target=target
    )
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
    config = yaml.safe_load(Path(path).read_text())
    assert [c["name"] for c in config["contexts"]] == ["central", "west"]
    assert config["clusters"][0]["cluster"] == {
        "server": "https://127.0.0.1:1",
        "certificate-authority-data": "Q0E=",
    }
    assert config["users"][0]["user"] == {"token": operator_token(sandbox.layout)}
    assert operator_token(sandbox.layout) not in path


def test_gke_kubeconfig_uses_the_auth_plugin() -> None:
    user = {"exec": clients.GKE_AUTH_PLUGIN}
    config = kubeconfig(user, [access("central")])
    assert config["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert config["contexts"][0] == {"name": "central", "context": {"cluster": "central", "user": "central"}}


def test_kubeconfig_of_another_mesh_is_not_overwritten(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    path = str(tmp_path / "kubeconfig")
    write_kubeconfig.fn(mesh(name="other"), [access("central")], path, target=target)
    before = Path(path).read_text()
    with pytest.raises(Conflict, match=r"holds the kubeconfig of mesh 'other' \(demo-project on sandbox\)"):
        write_kubeconfig.fn(mesh(), [access("west")], path, target=target)
    assert Path(path).read_text() == before
    assert remove_kubeconfig.fn(mesh(), path) is False
    assert Path(path).read_text() == before
    write_kubeconfig.fn(mesh(), [access("west")], path, target=target, force=True)
    assert [c["name"] for c in yaml.safe_load(Path(path).read_text())["contexts"]] == ["west"]


def test_kubeconfig_meshwright_did_not_write_is_kept_and_own_one_is_rewritten(
    sandbox: World, target: MeshwrightTarget, tmp_path: Path
) -> None:
    foreign = tmp_path / "config"
    foreign.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "contexts": [{"name": "prod"}]}))
    with pytest.raises(Conflict, match="holds 1 context\\(s\\) that meshwright did not write for this mesh"):
        check_kubeconfig.fn(mesh(), str(foreign))
    own = str(tmp_path / "own")
    write_kubeconfig.fn(mesh(), [access("central")], own, target=target)
    write_kubeconfig.fn(mesh(), [access("central"), access("west")], own, target=target)
    assert yaml.safe_load(Path(own).read_text())["preferences"] == {
        "extensions": [
            {
                "name": "meshwright",
                "extension": {"mesh": "m1", "project": "demo-project", "target": "sandbox"},
            }
        ]
    }
    assert remove_kubeconfig.fn(mesh(), own) is True
    assert not Path(own).exists()
