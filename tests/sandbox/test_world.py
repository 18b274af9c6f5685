"""Persistence across restarts, fault rules (file, admin endpoint), the latency profile."""

from __future__ import annotations

import json
import re
import stat
import time
import urllib.request
from pathlib import Path

import kubernetes.client
import pytest
from google.api_core import exceptions as gx
from google.cloud import compute_v1, container_v1

from meshwright.sandbox.faults import FaultRule, Faults
from meshwright.sandbox.settings import Latency
from meshwright.sandbox.world import World
from tests.sandbox.test_compute import rule
from tests.support import (
    FAST,
    PARENT,
    PROJECT,
    firewalls_client,
    gke_client,
    kube_client,
    new_cluster,
    running_cluster,
    wait_done,
)


def test_restart_restores_clusters_ports_cas_rules_and_objects(tmp_path: Path) -> None:
    root = tmp_path / "state"
    world = World(root, latency=FAST).start()
    cluster = running_cluster(gke_client(world), "central")
    pending = gke_client(world).create_cluster(parent=PARENT, cluster=new_cluster("late"))
    firewalls_client(world).insert(project=PROJECT, firewall_resource=rule()).result(timeout=5)
    import kubernetes.client

    kubernetes.client.CoreV1Api(kube_client(world, cluster)).create_namespace({"metadata": {"name": "kept"}})
    port = world.server.port if world.server else 0
    world.stop()

    again = World(root, latency=FAST).start(port=port)
    try:
        gke = gke_client(again)
        restored = gke.get_cluster(name=f"{PARENT}/clusters/central")
        assert (restored.endpoint, restored.master_auth.cluster_ca_certificate) == (
            cluster.endpoint,
            cluster.master_auth.cluster_ca_certificate,
        )
        wait_done(gke, PARENT, pending.name)
        assert gke.get_cluster(name=f"{PARENT}/clusters/late").status == container_v1.Cluster.Status.RUNNING
        assert firewalls_client(again).get(project=PROJECT, firewall="meshwright-m-pods").priority == 900
        names = [
            n.metadata.name
            for n in kubernetes.client.CoreV1Api(kube_client(again, restored)).list_namespace().items
        ]
        assert "kept" in names
    finally:
        again.stop()


def test_ca_keys_and_operator_token_are_private(world: World, gke: container_v1.ClusterManagerClient) -> None:
    running_cluster(gke, "central")
    keys = [*world.layout.root.rglob("*.key"), world.layout.operator_token]
    assert keys
    assert all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)


def test_status_rule_fails_only_the_first_n_requests(
    world: World, gke: container_v1.ClusterManagerClient
) -> None:
    running_cluster(gke, "central")
    world.faults.replace([FaultRule(api="gke", method="GET", cluster="central", status=503, times=2)])
    # get_cluster retries ServiceUnavailable by default: the third attempt succeeds.
    assert gke.get_cluster(name=f"{PARENT}/clusters/central").name == "central"
    assert world.faults.describe()[0]["fired"] == 2


def test_status_rule_on_create_reaches_the_caller(
    world: World, gke: container_v1.ClusterManagerClient
) -> None:
    world.faults.replace([FaultRule(api="gke", method="POST", path="/clusters$", status=429)])
    with pytest.raises(gx.TooManyRequests, match="Quota exceeded"):
        gke.create_cluster(parent=PARENT, cluster=new_cluster("east"))


def test_operation_rule_fails_the_create_with_its_message(
    world: World, gke: container_v1.ClusterManagerClient
) -> None:
    quota = "Insufficient regional quota to satisfy request: resource CPUS"
    world.faults.replace(
        Faults.parse([{"api": "gke", "operation": "CREATE_CLUSTER", "cluster": "east", "fail": quota}])
    )
    west = gke.create_cluster(parent=PARENT, cluster=new_cluster("west"))
    east = gke.create_cluster(parent=PARENT, cluster=new_cluster("east"))
    assert wait_done(gke, PARENT, east.name).error.message == quota
    assert gke.get_cluster(name=f"{PARENT}/clusters/east").status == container_v1.Cluster.Status.ERROR
    assert not wait_done(gke, PARENT, west.name).error.message


def test_admin_endpoint_replaces_lists_and_clears_rules(
    world: World, firewalls: compute_v1.FirewallsClient
) -> None:
    url = f"{world.base_url()}/_sandbox/faults"
    body = b"- api: compute\n  method: GET\n  status: 403\n  message: denied\n"
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="PUT")) as r:
        assert json.loads(r.read())["faults"][0]["status"] == 403
    with pytest.raises(gx.Forbidden, match="denied"):
        firewalls.get(project=PROJECT, firewall="x")
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE")) as r:
        assert json.loads(r.read()) == {"faults": []}
    with pytest.raises(gx.NotFound):
        firewalls.get(project=PROJECT, firewall="x")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(
            urllib.request.Request(url, data=b"- api: nope\n  status: 500\n", method="PUT")
        )
    assert caught.value.code == 400


def test_probability_and_delay_rules(world: World) -> None:
    import random

    faults = Faults(
        Faults.parse([{"api": "kube", "cluster": "central", "delay": 0.5, "probability": 0.5}]),
        rng=random.Random(7),
    )
    effects = [
        faults.on_request(api="kube", method="GET", path="/api", cluster="central") for _ in range(200)
    ]
    hits = sum(1 for e in effects if e.delay)
    assert 60 < hits < 140
    assert faults.on_request(api="kube", method="GET", path="/api", cluster="west").delay == 0


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ([{"api": "gke"}], "a rule needs an effect: status, delay, or operation+fail"),
        (
            [{"api": "gke", "status": 503, "times": 1, "probability": 0.5}],
            "use either `times` or `probability`, not both",
        ),
        ([{"api": "gke", "fail": "x"}], "`fail` goes with `operation`"),
        ([{"api": "gke", "operation": "CREATE_CLUSTER"}], "an `operation` rule needs `fail: <message>`"),
        (
            [{"api": "nope", "status": 500}],
            "Input should be 'gke', 'compute', 'kube', 'iam' or 'serviceusage'",
        ),
        ([{"api": "gke", "status": 200}], "Input should be greater than or equal to 400"),
        (
            [{"api": "gke", "status": 500, "path": "("}],
            "`path` is not a regular expression: missing ), unterminated subpattern",
        ),
        ({"api": "gke"}, "faults must be a list of rules"),
    ],
)
def test_invalid_fault_rules_are_refused_with_their_reason(bad: object, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        Faults.parse(bad)


def test_latency_profile_is_honoured(tmp_path: Path) -> None:
    world = World(tmp_path / "s", latency=Latency(create=1.0, pending=0.05)).start()
    try:
        gke = gke_client(world)
        started = time.monotonic()
        op = gke.create_cluster(parent=PARENT, cluster=new_cluster("timed"))
        wait_done(gke, PARENT, op.name)
        assert time.monotonic() - started >= 1.0
    finally:
        world.stop()


def test_latency_parsing() -> None:
    assert Latency.parse("create=4,delete=2").as_dict()["create"] == 4.0
    with pytest.raises(ValueError, match="unknown latency key"):
        Latency.parse("craete=4")


def test_controller_work_cut_short_by_a_restart_is_finished_after_it(tmp_path: Path) -> None:
    import kubernetes.client

    root = tmp_path / "state"
    slow = World(root, latency=Latency(create=0.2, pending=0.05, rollout=30, loadbalancer=30)).start()
    cluster = running_cluster(gke_client(slow), "central")
    api = kube_client(slow, cluster)
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    kubernetes.client.AppsV1Api(api).create_namespaced_deployment("default", body)
    kubernetes.client.CoreV1Api(api).create_namespaced_service(
        "default", {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}
    )
    port = slow.server.port if slow.server else 0
    slow.stop()
    fast = World(root, latency=FAST).start(port=port)
    try:
        api = kube_client(fast, cluster)
        deadline = time.monotonic() + 5
        while not (
            (
                kubernetes.client.AppsV1Api(api)
                .read_namespaced_deployment("web", "default")
                .status.ready_replicas
                == 2
            )
            and kubernetes.client.CoreV1Api(api)
            .read_namespaced_service("lb", "default")
            .status.load_balancer.ingress
        ):
            assert time.monotonic() < deadline, "the restarted sandbox never finished the rollout"
            time.sleep(0.05)
    finally:
        fast.stop()


def test_state_written_by_the_previous_sandbox_version_still_loads(tmp_path: Path) -> None:
    """gcp.json as the sandbox wrote it before records were typed: dicts with `_` bookkeeping keys."""
    root = tmp_path / "state"
    root.mkdir()
    key = f"{PROJECT}/us-central1-a/old"
    cluster = {
        "name": "old",
        "location": "us-central1-a",
        "zone": "us-central1-a",
        "network": "default",
        "status": "PROVISIONING",
        "id": "0123456789abcdef0123456789abcdef",
        "clusterIpv4Cidr": "10.252.0.0/14",
        "servicesIpv4Cidr": "34.118.224.0/20",
        "nodePools": [],
        "_project": PROJECT,
        "_explicit_range": False,
    }
    operation = {
        "name": "operation-1-aa",
        "zone": "us-central1-a",
        "location": "us-central1-a",
        "operationType": "CREATE_CLUSTER",
        "selfLink": "x",
        "targetLink": "x",
        "startTime": "x",
        "_project": PROJECT,
        "_cluster": key,
        "_started": 1.0,
        "_due": 2.0,
        "_done": True,
        "_fail": "quota",
    }
    firewall = {"kind": "compute#firewall", "id": "1", "name": "fw", "priority": 900, "_project": PROJECT}
    gke_state = {
        "clusters": {key: cluster},
        "operations": {f"{PROJECT}/us-central1-a/operation-1-aa": operation},
    }
    state = {"gke": gke_state, "compute": {"firewalls": {f"{PROJECT}/fw": firewall}}}
    (root / "gcp.json").write_text(json.dumps(state))
    world = World(root, latency=Latency(create=3600)).start()
    try:
        gke = gke_client(world)
        assert gke.get_cluster(name=f"{PARENT}/clusters/old").cluster_ipv4_cidr == "10.252.0.0/14"
        assert gke.get_operation(name=f"{PARENT}/operations/operation-1-aa").error.message == "quota"
        assert firewalls_client(world).get(project=PROJECT, firewall="fw").priority == 900
    finally:
        world.stop()
    assert json.loads((root / "gcp.json").read_text())["gke"]["clusters"][key]["_project"] == PROJECT


def _modes(root: Path) -> dict[str, str]:
    """Each directory's and file's permission bits under `root` (root itself as '.')."""
    return {
        str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in [root, *root.rglob("*")]
        if not p.is_symlink()
    }


def test_the_state_directory_and_everything_in_it_is_private_to_its_user(tmp_path: Path) -> None:
    root = tmp_path / "state"
    (root / "kube" / "old").mkdir(parents=True, mode=0o755)  # what an older sandbox left
    (root / "kube" / "old" / "journal.jsonl").write_text("{}\n")
    (root / "kube" / "old" / "journal.jsonl").chmod(0o644)
    w = World(root, latency=FAST).start()
    try:
        cluster = running_cluster(gke_client(w), "central")
        core = kubernetes.client.CoreV1Api(kube_client(w, cluster))
        core.create_namespaced_secret("default", {"metadata": {"name": "s"}, "data": {"k": "dg=="}})
    finally:
        w.stop()
    modes = {p: m for p, m in _modes(root).items() if not p.startswith("test-ca")}  # kube_client's, not ours
    assert any("journal.jsonl" in p for p in modes if not p.startswith("kube/old"))
    assert {p: m for p, m in modes.items() if m != ("0o700" if (root / p).is_dir() else "0o600")} == {}


def test_a_new_cluster_is_started_while_it_is_created_and_published_only_when_running(tmp_path: Path) -> None:
    world = World(tmp_path / "s", latency=Latency(create=3.0, pending=0.05)).start()
    try:
        gke = gke_client(world)
        op = gke.create_cluster(parent=PARENT, cluster=new_cluster("early"))
        cid = next(c.id for c in world.gke.clusters.values() if c.name == "early")
        deadline = time.monotonic() + 2.5
        while cid not in world.fleet.running_apis and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cid in world.fleet.running_apis  # started ahead: its cost is inside the create's time
        seen = gke.get_cluster(name=f"{PARENT}/clusters/early")
        assert (seen.status, seen.endpoint) == (container_v1.Cluster.Status.PROVISIONING, "")
        assert "early" not in [s.node.cluster for s in world.dataplane.sources.clusters()]
        wait_done(gke, PARENT, op.name)
        running = gke.get_cluster(name=f"{PARENT}/clusters/early")
        assert running.status == container_v1.Cluster.Status.RUNNING
        assert running.endpoint == f"127.0.0.1:{world.fleet.running_apis[cid].server.port}"
        assert kubernetes.client.VersionApi(kube_client(world, running)).get_code().git_version
    finally:
        world.stop()


def test_a_create_that_fails_leaves_no_api_running(
    world: World, gke: container_v1.ClusterManagerClient
) -> None:
    world.faults.replace(
        Faults.parse([{"api": "gke", "operation": "CREATE_CLUSTER", "cluster": "east", "fail": "no"}])
    )
    wait_done(gke, PARENT, gke.create_cluster(parent=PARENT, cluster=new_cluster("east")).name)
    assert gke.get_cluster(name=f"{PARENT}/clusters/east").status == container_v1.Cluster.Status.ERROR
    assert not world.fleet.running_apis
