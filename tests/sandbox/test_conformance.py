"""Every JSON object the emulator returns validates against Google's discovery documents; and the
discovery-based client (string enums) drives the emulator as well as the google-cloud clients do."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import httplib2
import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from meshwright.sandbox.world import World
from tests.sandbox.schema import violations
from tests.support import PARENT, PROJECT, running_cluster, wait_done


def fetch(world: World, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"{world.base_url()}{path}", method=method, data=json.dumps(body).encode() if body else None
    )
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def gke_api(world: World) -> Any:
    return discovery.build(
        "container",
        "v1",
        static_discovery=True,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": world.base_url() + "/"},
    )


def compute_api(world: World) -> Any:
    return discovery.build(
        "compute",
        "v1",
        static_discovery=True,
        http=httplib2.Http(),
        client_options={"api_endpoint": world.base_url() + "/compute/v1/"},
    )


def test_every_gke_response_matches_the_discovery_document(world: World, gke: Any) -> None:
    running_cluster(gke, "central")
    _, created = fetch(
        world,
        "POST",
        f"/v1/{PARENT}/clusters",
        {"cluster": {"name": "second", "initialNodeCount": 1, "releaseChannel": {"channel": "RAPID"}}},
    )
    samples = [
        ("Operation", created),
        ("Cluster", fetch(world, "GET", f"/v1/{PARENT}/clusters/central")[1]),
        ("Cluster", fetch(world, "GET", f"/v1/{PARENT}/clusters/second")[1]),
        ("ListClustersResponse", fetch(world, "GET", f"/v1/projects/{PROJECT}/locations/-/clusters")[1]),
        ("Operation", fetch(world, "GET", f"/v1/{PARENT}/operations/{created['name']}")[1]),
        ("ListOperationsResponse", fetch(world, "GET", f"/v1/{PARENT}/operations")[1]),
        ("Operation", fetch(world, "DELETE", f"/v1/{PARENT}/clusters/central")[1]),
    ]
    for schema, body in samples:
        assert violations("container", schema, body) == [], schema


def test_every_compute_response_matches_the_discovery_document(world: World) -> None:
    base = f"/compute/v1/projects/{PROJECT}/global"
    rule = {
        "name": "r1",
        "network": "global/networks/default",
        "sourceRanges": ["10.0.0.0/14"],
        "allowed": [{"IPProtocol": "tcp", "ports": ["80"]}],
        "targetTags": ["t"],
    }
    _, op = fetch(world, "POST", f"{base}/firewalls", rule)
    samples = [
        ("Operation", op),
        ("Firewall", fetch(world, "GET", f"{base}/firewalls/r1")[1]),
        ("FirewallList", fetch(world, "GET", f"{base}/firewalls")[1]),
        ("Operation", fetch(world, "PATCH", f"{base}/firewalls/r1", {"priority": 900})[1]),
        ("Operation", fetch(world, "GET", f"{base}/operations/{op['name']}")[1]),
        ("Operation", fetch(world, "POST", f"{base}/operations/{op['name']}/wait")[1]),
        ("OperationList", fetch(world, "GET", f"{base}/operations")[1]),
        ("Network", fetch(world, "GET", f"{base}/networks/default")[1]),
        ("NetworkList", fetch(world, "GET", f"{base}/networks")[1]),
        ("Operation", fetch(world, "DELETE", f"{base}/firewalls/r1")[1]),
    ]
    for schema, body in samples:
        assert violations("compute", schema, body) == [], schema


def test_checker_flags_what_is_not_in_the_schema() -> None:
    assert violations("container", "Cluster", {"status": "WEIRD", "masterAuth": {"caCert": "x"}}) == [
        "Cluster.status: 'WEIRD' not in enum",
        "Cluster.masterAuth.caCert: not in the schema",
    ]


def test_discovery_client_drives_clusters_with_string_enums(world: World) -> None:
    clusters = gke_api(world).projects().locations().clusters()
    body = {"cluster": {"name": "disco", "initialNodeCount": 1, "releaseChannel": {"channel": "STABLE"}}}
    op = clusters.create(parent=PARENT, body=body).execute()
    assert op["operationType"] == "CREATE_CLUSTER"
    ops = gke_api(world).projects().locations().operations()
    import time

    deadline = time.monotonic() + 5
    while ops.get(name=f"{PARENT}/operations/{op['name']}").execute()["status"] != "DONE":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    got = clusters.get(name=f"{PARENT}/clusters/disco").execute()
    assert (got["status"], got["releaseChannel"]["channel"]) == ("RUNNING", "STABLE")
    assert [
        c["name"] for c in clusters.list(parent=f"projects/{PROJECT}/locations/-").execute()["clusters"]
    ] == ["disco"]
    clusters.delete(name=f"{PARENT}/clusters/disco").execute()
    with pytest.raises(HttpError) as caught:
        clusters.create(parent=PARENT, body=body).execute()
    assert caught.value.resp.status == 409


def test_discovery_client_drives_firewalls(world: World) -> None:
    compute = compute_api(world)
    op = (
        compute.firewalls()
        .insert(
            project=PROJECT,
            body={
                "name": "r1",
                "network": "global/networks/default",
                "sourceRanges": ["10.0.0.0/14"],
                "allowed": [{"IPProtocol": "all"}],
            },
        )
        .execute()
    )
    assert (
        compute.globalOperations().wait(project=PROJECT, operation=op["name"]).execute()["status"] == "DONE"
    )
    assert compute.firewalls().get(project=PROJECT, firewall="r1").execute()["sourceRanges"] == [
        "10.0.0.0/14"
    ]
    compute.firewalls().delete(project=PROJECT, firewall="r1").execute()
    with pytest.raises(HttpError) as caught:
        compute.firewalls().get(project=PROJECT, firewall="r1").execute()
    assert caught.value.resp.status == 404


def test_integer_and_string_enums_are_both_accepted(world: World, gke: Any) -> None:
    for name, channel in (("ints", 1), ("strs", "RAPID")):
        status, op = fetch(
            world,
            "POST",
            f"/v1/{PARENT}/clusters",
            {"cluster": {"name": name, "initialNodeCount": 1, "releaseChannel": {"channel": channel}}},
        )
        assert status == 200
        wait_done(gke, PARENT, op["name"])
        assert fetch(world, "GET", f"/v1/{PARENT}/clusters/{name}")[1]["releaseChannel"] == {
            "channel": "RAPID"
        }


def test_discovery_client_legacy_zone_paths(world: World) -> None:
    zones = gke_api(world).projects().zones().clusters()
    op = zones.create(
        projectId=PROJECT, zone="us-central1-a", body={"cluster": {"name": "legacy", "initialNodeCount": 1}}
    ).execute()
    assert op["operationType"] == "CREATE_CLUSTER"
    assert (
        zones.get(projectId=PROJECT, zone="us-central1-a", clusterId="legacy").execute()["name"] == "legacy"
    )
    assert [c["name"] for c in zones.list(projectId=PROJECT, zone="-").execute()["clusters"]] == ["legacy"]
    status, _ = fetch(world, "GET", f"/v1/projects/{PROJECT}/zones/us-central1-a/operations/{op['name']}")
    assert status == 200
