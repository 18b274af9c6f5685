"""The control-plane checks, from observations: each breakage becomes one line that names it."""

from __future__ import annotations

import pytest

from meshwright.istio_values import needs_eastwest
from meshwright.remote_secrets import pairs, remote_secret, same_secret
from meshwright.spec import MeshSpec, validate_spec
from meshwright.verify import Observation, check, failure, table_rows

ROOT = "ab" * 32


def spec(**extra: object) -> MeshSpec:
    return validate_spec(
        {
            "name": "m1",
            "project": "demo-project",
            "clusters": [
                {"name": "central", "location": "us-central1-a"},
                {"name": "east", "location": "us-east1-b"},
                {"name": "west", "location": "us-west1-b", "primary": "central"},
            ],
            **extra,
        }
    )


def healthy() -> dict[str, Observation]:
    return {
        "central": Observation(
            cluster="central",
            clusterz={"central": "synced", "east": "synced", "west": "synced"},
            root=ROOT,
            eastwest_addresses=["203.0.113.7"],
        ),
        "east": Observation(
            cluster="east", clusterz={"east": "synced", "central": "synced", "west": "synced"}, root=ROOT
        ),
        "west": Observation(cluster="west", root=ROOT, istiod_addresses=["203.0.113.7"]),
    }


def test_every_cluster_goes_into_every_primary_but_itself() -> None:
    assert sorted(pairs(spec())) == [
        ("central", "east"),
        ("east", "central"),
        ("west", "central"),
        ("west", "east"),
    ]


def test_healthy_mesh_has_no_problem_and_a_row_per_pair() -> None:
    report = check(spec(), healthy())
    assert report.ok, report.problems
    assert {(r["primary"], r["cluster"], r["status"]) for r in table_rows(report)} == {
        ("central", "east", "synced"),
        ("central", "west", "synced"),
        ("east", "central", "synced"),
        ("east", "west", "synced"),
    }


def test_a_cluster_not_synced_is_named_with_its_secret_and_the_diagnosis() -> None:
    seen = healthy()
    seen["central"].clusterz = {"central": "synced", "east": "synced", "west": "timeout"}
    seen["central"].secrets = {"west": "token rejected"}
    assert check(spec(), seen).problems == [
        "central does not see west: timeout (remote secret istio-remote-secret-west: token rejected)"
    ]


def test_a_cluster_missing_from_clusterz_is_not_listed() -> None:
    seen = healthy()
    seen["east"].clusterz = {"east": "synced", "central": "synced"}
    seen["east"].secrets = {"west": "missing"}
    assert check(spec(), seen).problems == [
        "east does not see west: not listed (remote secret istio-remote-secret-west: missing)"
    ]


def test_a_different_root_is_named_against_the_mesh_root() -> None:
    seen = healthy()
    seen["east"].root = "cd" * 32
    assert check(spec(), seen).problems == [
        f"east: cacerts root {'cd' * 8} differs from the mesh's root {'ab' * 8}"
    ]


def test_missing_cacerts_and_gateway_address_and_wrong_istiod_address() -> None:
    seen = healthy()
    seen["west"].root = None
    seen["west"].istiod_addresses = ["10.0.0.9"]
    seen["central"].eastwest_addresses = []
    problems = check(spec(), seen).problems
    assert "west: no cacerts secret in istio-system" in problems
    assert "central: east-west gateway istio-eastwestgateway has no load-balancer address" in problems
    seen["central"].eastwest_addresses = ["203.0.113.7"]
    assert check(spec(), seen).problems == [
        "west: no cacerts secret in istio-system",
        "west: Service istiod points to 10.0.0.9, not to central's east-west gateway 203.0.113.7",
    ]


def test_unreadable_clusterz_and_unobservable_cluster_are_reported() -> None:
    seen = healthy()
    seen["central"].clusterz, seen["central"].clusterz_error = None, "HTTP 503 from the service proxy"
    seen["west"] = Observation(cluster="west", error="the cluster does not exist")
    problems = check(spec(), seen).problems
    assert problems == [
        "west: the cluster does not exist",
        "central: cannot read istiod's clusterz: HTTP 503 from the service proxy",
    ]


def test_failure_has_one_line_per_problem() -> None:
    seen = healthy()
    seen["east"].root = None
    seen["central"].clusterz = {"east": "synced"}
    error = failure(check(spec(), seen))
    lines = str(error).splitlines()
    assert lines[0].endswith("the control plane of mesh m1 has 2 problem(s):")
    assert lines[1:] == [
        "  central does not see west: not listed (remote secret istio-remote-secret-west: not diagnosed)",
        "  east: no cacerts secret in istio-system",
    ]


@pytest.mark.parametrize(("cluster", "needs"), [("central", True), ("east", False), ("west", False)])
def test_which_clusters_need_an_eastwest_gateway(cluster: str, needs: bool) -> None:
    assert needs_eastwest(spec(), spec().cluster(cluster)) is needs
    multi_network = spec(
        clusters=[
            {"name": cluster, "location": "us-east1-b", "network": "n1"},
            {"name": "other", "location": "us-east1-b", "network": "n2"},
        ]
    )
    assert needs_eastwest(multi_network, multi_network.cluster(cluster))


def test_remote_secret_comparison_sees_data_and_label() -> None:
    wanted = remote_secret("west", b"kubeconfig")
    assert wanted["metadata"]["annotations"] == {"networking.istio.io/cluster": "west"}
    assert same_secret(wanted, wanted)
    assert not same_secret({**wanted, "data": {"west": "b3RoZXI="}}, wanted)
    assert not same_secret({**wanted, "metadata": {"name": "x"}}, wanted)
    assert not same_secret(None, wanted)
