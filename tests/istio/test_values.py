"""Values, namespace and gateway objects per role and topology, as Istio's install guides give them."""

from __future__ import annotations

import pytest

from meshwright import istio_values as iv
from meshwright.spec import MeshSpec, validate_spec


def spec(*clusters: dict[str, object], mesh_id: str | None = None) -> MeshSpec:
    return validate_spec(
        {
            "name": "m1",
            "project": "demo-project",
            "istio": {"mesh_id": mesh_id} if mesh_id else {},
            "clusters": list(clusters),
        }
    )


PRIMARY_REMOTE = spec(
    {"name": "central", "location": "us-central1-a"},
    {"name": "west", "location": "us-west1-b", "primary": "central"},
)
MULTI_NETWORK = spec(
    {"name": "alpha", "location": "europe-west4-a", "network": "net-a"},
    {"name": "beta", "location": "us-east4-c", "network": "net-b"},
    mesh_id="shared",
)
SAME_NETWORK = spec(
    {"name": "alpha", "location": "europe-west4-a"},
    {"name": "beta", "location": "us-east4-c"},
)


def test_primary_with_remotes_runs_an_external_istiod() -> None:
    central = PRIMARY_REMOTE.cluster("central")
    assert iv.base_values(PRIMARY_REMOTE, central) == {
        "defaultRevision": "1-30-3",
        "global": {"externalIstiod": True},
    }
    assert iv.istiod_values(PRIMARY_REMOTE, central) == {
        "global": {
            "meshID": "m1",
            "multiCluster": {"clusterName": "central"},
            "network": "default",
            "externalIstiod": True,
        },
        "pilot": {"env": {"EXTERNAL_ISTIOD": "true"}},
        "revision": "1-30-3",
        "revisionTags": ["default"],
    }


def test_remote_uses_the_remote_profile_pointed_at_its_primary() -> None:
    west = PRIMARY_REMOTE.cluster("west")
    assert iv.base_values(PRIMARY_REMOTE, west) == {
        "defaultRevision": "1-30-3",
        "profile": "remote",
        "global": {"externalIstiod": True},
    }
    assert iv.istiod_values(PRIMARY_REMOTE, west, remote_pilot_address="10.0.0.7") == {
        "profile": "remote",
        "global": {
            "meshID": "m1",
            "multiCluster": {"clusterName": "west"},
            "network": "default",
            "configCluster": True,
            "remotePilotAddress": "10.0.0.7",
        },
        "istiodRemote": {"injectionPath": "/inject/cluster/west/net/default"},
        "revision": "1-30-3",
        "revisionTags": ["default"],
    }


def test_remote_istiod_without_its_primary_address_is_refused() -> None:
    with pytest.raises(ValueError, match="east-west gateway address"):
        iv.release(PRIMARY_REMOTE, PRIMARY_REMOTE.cluster("west"), "istiod")


def test_remote_namespace_names_its_control_plane_and_no_network_on_one_network() -> None:
    assert iv.namespace(PRIMARY_REMOTE, PRIMARY_REMOTE.cluster("west")) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "istio-system",
            "annotations": {"topology.istio.io/controlPlaneClusters": "central"},
        },
    }
    assert iv.namespace(PRIMARY_REMOTE, PRIMARY_REMOTE.cluster("central"))["metadata"] == {
        "name": "istio-system"
    }


def test_primary_remote_exposes_istiod_only() -> None:
    central, west = PRIMARY_REMOTE.cluster("central"), PRIMARY_REMOTE.cluster("west")
    assert iv.release_names(PRIMARY_REMOTE, central) == ["istio-base", "istiod", "istio-eastwestgateway"]
    assert iv.release_names(PRIMARY_REMOTE, west) == ["istio-base", "istiod"]
    objects = iv.exposures(PRIMARY_REMOTE, central)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Gateway", "istiod-gateway"),
        ("VirtualService", "istiod-vs"),
    ]
    assert [s["port"]["number"] for s in objects[0]["spec"]["servers"]] == [15012, 15017]
    routes = objects[1]["spec"]["tls"]
    assert [(r["match"][0]["port"], r["route"][0]["destination"]["port"]["number"]) for r in routes] == [
        (15012, 15012),
        (15017, 443),
    ]
    assert iv.exposures(PRIMARY_REMOTE, west) == []


def test_multi_network_labels_namespaces_and_gives_every_cluster_an_eastwest_gateway() -> None:
    for name, net in (("alpha", "net-a"), ("beta", "net-b")):
        c = MULTI_NETWORK.cluster(name)
        assert iv.namespace(MULTI_NETWORK, c)["metadata"]["labels"] == {"topology.istio.io/network": net}
        assert iv.eastwest_values(MULTI_NETWORK, c) == {
            "name": "istio-eastwestgateway",
            "networkGateway": net,
        }
        assert iv.istiod_values(MULTI_NETWORK, c)["global"]["meshID"] == "shared"
        assert iv.base_values(MULTI_NETWORK, c) == {"defaultRevision": "1-30-3"}
        gateway = iv.exposures(MULTI_NETWORK, c)
        assert [o["metadata"]["name"] for o in gateway] == ["cross-network-gateway"]
        server = gateway[0]["spec"]["servers"][0]
        assert (server["port"]["number"], server["tls"]["mode"], server["hosts"]) == (
            15443,
            "AUTO_PASSTHROUGH",
            ["*.local"],
        )


def test_multi_primary_on_one_network_needs_no_gateway() -> None:
    alpha = SAME_NETWORK.cluster("alpha")
    assert iv.release_names(SAME_NETWORK, alpha) == ["istio-base", "istiod"]
    assert iv.exposures(SAME_NETWORK, alpha) == []
    assert "externalIstiod" not in iv.istiod_values(SAME_NETWORK, alpha)["global"]


def test_readiness_is_awaited_on_primaries_only() -> None:
    central, west = PRIMARY_REMOTE.cluster("central"), PRIMARY_REMOTE.cluster("west")
    assert iv.release(PRIMARY_REMOTE, central, "istiod").wait
    assert iv.release(PRIMARY_REMOTE, central, "istio-eastwestgateway").wait
    assert not iv.release(PRIMARY_REMOTE, west, "istiod", remote_pilot_address="10.0.0.7").wait
    with pytest.raises(ValueError, match="no release"):
        iv.release(PRIMARY_REMOTE, west, "istio-eastwestgateway")


def test_istiod_is_released_per_revision_and_exposed_per_revision_to_remotes() -> None:
    central = PRIMARY_REMOTE.cluster("central")
    assert iv.release(PRIMARY_REMOTE, central, "istiod").name == "istiod-1-30-3"
    beside = iv.release(PRIMARY_REMOTE, central, "istiod", rev="1-29-8", tagged=False)
    assert (beside.name, beside.values["revision"], beside.values["revisionTags"]) == (
        "istiod-1-29-8",
        "1-29-8",
        [],
    )
    service = iv.exposures(PRIMARY_REMOTE, central, ["1-29-8", "1-30-3"])[1]
    assert [
        (r["match"][0]["port"], r["match"][0]["sniHosts"][0], r["route"][0]["destination"]["host"])
        for r in service["spec"]["tls"]
    ] == [
        (15012, "istiod-1-29-8.istio-system.svc", "istiod-1-29-8.istio-system.svc.cluster.local"),
        (15017, "istiod-1-29-8.istio-system.svc", "istiod-1-29-8.istio-system.svc.cluster.local"),
        (15012, "istiod-1-30-3.istio-system.svc", "istiod-1-30-3.istio-system.svc.cluster.local"),
        (15017, "istiod-1-30-3.istio-system.svc", "istiod-1-30-3.istio-system.svc.cluster.local"),
    ]
    assert iv.istiod_revisions({"istiod": "1.29.8", "istiod-1-30-3": "1.30.3", "istio-base": "1.30.3"}) == {
        "": "1.29.8",
        "1-30-3": "1.30.3",
    }
