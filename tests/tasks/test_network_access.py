"""Firewall rule, network preflight and kubeconfig tasks."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from meshwright import clients
from meshwright.errors import PermanentError
from meshwright.models import ClusterAccess, Timing
from meshwright.sandbox.faults import FaultRule
from meshwright.sandbox.kube.fleet import operator_token
from meshwright.sandbox.world import World
from meshwright.spec import Target
from tasks.access import kubeconfig, write_kubeconfig
from tasks.network import (
    check_network,
    delete_firewall,
    ensure_firewall,
    find_expired_firewalls,
    get_firewall,
)
from tests.tasks.conftest import mesh


def test_firewall_is_created_then_unchanged_then_patched(sandbox: World) -> None:
    spec = mesh()
    first = ensure_firewall.fn(spec, ["10.8.0.0/14", "10.252.0.0/14"], expires=5000)
    assert (first.name, first.action) == ("meshwright-m1-pods", "created")
    rule = get_firewall(Target.SANDBOX, "demo-project", "meshwright-m1-pods", step="test")
    assert rule is not None
    assert (rule.priority, rule.direction, list(rule.target_tags)) == (900, "INGRESS", ["meshwright-m1-node"])
    assert sorted(a.I_p_protocol for a in rule.allowed) == ["ah", "esp", "icmp", "sctp", "tcp", "udp"]
    assert rule.description == "meshwright mesh=m1 expires=5000"
    assert ensure_firewall.fn(spec, ["10.252.0.0/14", "10.8.0.0/14"], expires=9999).action == "unchanged"
    patched = ensure_firewall.fn(spec, ["10.8.0.0/14"], expires=9999)
    assert (patched.action, patched.source_ranges) == ("patched", ["10.8.0.0/14"])
    assert get_firewall(Target.SANDBOX, "demo-project", "meshwright-m1-pods", step="t").description.endswith(
        "expires=5000"
    )


def test_firewall_quota_failure_is_permanent(sandbox: World) -> None:
    sandbox.faults.replace([FaultRule(api="compute", operation="insert", fail="Quota 'FIREWALLS' exceeded.")])
    with pytest.raises(PermanentError, match=r"ensure_firewall: .*Quota 'FIREWALLS' exceeded"):
        ensure_firewall.fn(mesh(), ["10.8.0.0/14"], expires=None)


def test_delete_and_find_expired_firewalls(sandbox: World) -> None:
    ensure_firewall.fn(mesh(), ["10.8.0.0/14"], expires=1000)
    ensure_firewall.fn(mesh(name="m2"), ["10.12.0.0/14"], expires=None)
    assert find_expired_firewalls.fn(Target.SANDBOX, "demo-project", now=2000) == ["meshwright-m1-pods"]
    assert delete_firewall.fn(Target.SANDBOX, "demo-project", "meshwright-m1-pods") == "deleted"
    assert delete_firewall.fn(Target.SANDBOX, "demo-project", "meshwright-m1-pods") == "absent"


def test_missing_network_fails_before_anything_is_created(sandbox: World) -> None:
    with pytest.raises(PermanentError, match="network 'mesh-vpc' does not exist in project demo-project"):
        check_network.fn(mesh(network="mesh-vpc"))
    assert check_network.fn(mesh()) == "default"


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


def test_sandbox_kubeconfig_has_a_context_per_cluster_and_mode_0600(sandbox: World, tmp_path: Path) -> None:
    path = write_kubeconfig.fn(
        mesh(), [access("central"), access("west")], str(tmp_path / "m1" / "kubeconfig")
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
