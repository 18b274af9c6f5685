"""The GCP emulator and the sandbox's HTTP layer against a hostile client (issue 9).

Each test sends what a careless or hostile local process could send, then checks the answer a
real server gives, that nothing was stored, and that the sandbox still restarts and answers.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gx
from google.cloud import container_v1

from meshwright.sandbox import store
from meshwright.sandbox.faults import Faults
from meshwright.sandbox.gcp import models
from meshwright.sandbox.gcp.validate import GKE_NAME_HELP
from meshwright.sandbox.http import GOOGLE_MAX_BODY, Request, Response, Server
from meshwright.sandbox.settings import Latency
from meshwright.sandbox.world import PAYLOAD_TOO_LARGE, World
from tests.sandbox.raw import call, files_outside, restarted, send_bytes, statuses
from tests.support import FAST, PROJECT, ZONE, gke_client

CLUSTERS = f"/v1/projects/{PROJECT}/locations/{ZONE}/clusters"
FIREWALLS = f"/compute/v1/projects/{PROJECT}/global/firewalls"
SLOW = Latency(create=3600, delete=3600, pending=0.05, firewall=0.0)  # nothing provisions during a test


def cluster_body(name: Any = "central", **fields: Any) -> dict[str, Any]:
    return {
        "cluster": {"name": name, "nodePools": [{"name": "default-pool", "initialNodeCount": 1}], **fields}
    }


def stored_names(w: World) -> list[str]:
    return sorted(c.name for c in w.gke.clusters.values())


def wait_for(check: Any, what: str, timeout: float = 10, *, w: World | None = None) -> None:
    """Poll `check` (under the world's lock when given, so no half-done change is seen)."""
    deadline = time.monotonic() + timeout
    while not _checked(check, w):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def _checked(check: Any, w: World | None) -> bool:
    if w is None:
        return bool(check())
    with w.lock:
        return bool(check())


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "state", latency=SLOW, faults=Faults()).start()
    yield w
    w.stop()


# -- names and paths (findings 2, 4, 5, 6, 7, 8) ---------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "nul\u0000x",
        "../../../../escaped",
        "a" * 300,
        "x" * 10_000,
        "a" * 41,
        "Upper",
        "1abc",
        "ends-",
        "a_b",
        "a/b",
    ],
)
def test_bad_gke_names_are_refused_and_nothing_is_stored(slow: World, tmp_path: Path, name: str) -> None:
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    status, answer = call(slow, "POST", CLUSTERS, cluster_body(name))
    assert (status, answer["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert answer["error"]["message"].endswith(GKE_NAME_HELP)
    assert stored_names(slow) == []
    again = restarted(slow)
    try:
        assert call(again, "GET", CLUSTERS) == (200, {"clusters": []})
        assert files_outside(again.layout.root, before) == set()
    finally:
        again.stop()


def test_forty_character_name_is_the_longest_accepted(slow: World) -> None:
    assert call(slow, "POST", CLUSTERS, cluster_body("a" * 40))[0] == 200
    assert call(slow, "POST", CLUSTERS, cluster_body("b" * 41))[0] == 400
    assert stored_names(slow) == ["a" * 40]


@pytest.mark.parametrize(
    ("project", "location"),
    [("..", ".."), ("..", ZONE), (PROJECT, ".."), ("%2e%2e", ZONE), (PROJECT, "-"), ("a%00b", ZONE)],
)
def test_project_and_location_are_checked_before_a_create(slow: World, project: str, location: str) -> None:
    status, answer = call(
        slow, "POST", f"/v1/projects/{project}/locations/{location}/clusters", cluster_body()
    )
    assert (status, answer["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert stored_names(slow) == []


def test_delete_through_dot_dot_paths_touches_no_directory(slow: World, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("mine")
    assert call(slow, "POST", "/v1/projects/../locations/../clusters", cluster_body("victim"))[0] == 400
    assert call(slow, "DELETE", "/v1/projects/../locations/../clusters/victim")[0] == 400
    assert (victim / "keep").read_text() == "mine"


def test_cluster_files_are_keyed_by_the_sandbox_id(world: World) -> None:
    assert call(world, "POST", CLUSTERS, cluster_body("central"))[0] == 200
    wait_for(lambda: world.gke.clusters[f"{PROJECT}/{ZONE}/central"].status == "RUNNING", "central RUNNING")
    cid = world.gke.clusters[f"{PROJECT}/{ZONE}/central"].id
    assert (world.layout.kube_dir(cid)).is_dir()
    assert not any("central" in str(p.relative_to(world.layout.root)) for p in world.layout.root.rglob("*"))


def test_a_number_as_name_is_refused_and_lists_keep_working(slow: World) -> None:
    assert call(slow, "POST", CLUSTERS, cluster_body("kept"))[0] == 200
    status, answer = call(slow, "POST", CLUSTERS, cluster_body(12345))
    assert status == 400
    assert "TYPE_STRING" in answer["error"]["message"] or "cluster.name" in answer["error"]["message"]
    status, listed = call(slow, "GET", f"/v1/projects/{PROJECT}/locations/-/clusters")
    assert (status, [c["name"] for c in listed["clusters"]]) == (200, ["kept"])


# -- background threads and starts (findings 6, 7, "a record it cannot load") ------------------------


def test_an_operation_that_cannot_finish_fails_alone(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    prepare = world.fleet.prepare

    def fails_for_broken(cluster_id: str) -> tuple[int, str]:
        if cluster_id == world.gke.clusters[f"{PROJECT}/{ZONE}/broken"].id:
            raise OSError(36, "File name too long")
        return prepare(cluster_id)

    monkeypatch.setattr(world.fleet, "prepare", fails_for_broken)
    call(world, "POST", CLUSTERS, cluster_body("broken"))
    call(world, "POST", CLUSTERS, cluster_body("healthy"))
    # No request from here on: only the ticker moves the operations.
    wait_for(lambda: all(op.done for op in world.gke.operations.values()), "both DONE", w=world)
    status = {c.name: c.status for c in world.gke.clusters.values()}
    assert status == {"broken": "ERROR", "healthy": "RUNNING"}
    assert world._ticker is not None
    assert world._ticker.is_alive()


def test_the_ticker_survives_an_exception(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    advance, failures = world.gke.advance, list[int]()

    def flaky() -> bool:
        if threading.current_thread().name == "sandbox-ticker" and len(failures) < 3:
            failures.append(1)
            raise RuntimeError("disk full")
        return advance()

    monkeypatch.setattr(world.gke, "advance", flaky)
    with caplog.at_level(logging.WARNING, logger="meshwright.sandbox.world"):
        call(world, "POST", CLUSTERS, cluster_body("central"))
        wait_for(lambda: world.gke.clusters[f"{PROJECT}/{ZONE}/central"].status == "RUNNING", "RUNNING")
    assert len(failures) == 3
    assert [r.getMessage() for r in caplog.records] == ["operations ticker: RuntimeError: disk full"]


def test_a_start_that_fails_after_binding_leaves_no_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = World(tmp_path / "state", latency=SLOW)
    monkeypatch.setattr(w, "tick", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        w.start()
    w.fleet.close()
    assert w.server is not None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", w.server.port))  # the port is free again: no second listener stays open


def test_a_cluster_whose_api_cannot_resume_does_not_stop_the_start(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    call(world, "POST", CLUSTERS, cluster_body("central"))
    wait_for(lambda: world.gke.clusters[f"{PROJECT}/{ZONE}/central"].status == "RUNNING", "RUNNING")
    port = world.server.port if world.server else 0
    world.stop()
    again = World(world.layout.root, latency=FAST)
    monkeypatch.setattr(
        again.fleet, "resume", lambda clusters: (_ for _ in ()).throw(OSError("name too long"))
    )
    with caplog.at_level(logging.WARNING, logger="meshwright.sandbox.world"):
        again.start(port=port)
    try:
        assert again.server is not None
        assert again.server.port == port
        assert call(again, "GET", f"{CLUSTERS}/central")[0] == 200
        assert [r.getMessage().split(":")[0] for r in caplog.records] == [
            f"cluster {PROJECT}/{ZONE}/central ({again.gke.clusters[f'{PROJECT}/{ZONE}/central'].id}) not resumed"
        ]
    finally:
        again.stop()


def test_records_that_cannot_load_are_skipped_and_named(
    slow: World, caplog: pytest.LogCaptureFixture
) -> None:
    call(slow, "POST", CLUSTERS, cluster_body("kept"))
    slow.stop()
    data = store.read_json(slow.layout.gcp)
    good = data["gke"]["clusters"][f"{PROJECT}/{ZONE}/kept"]
    data["gke"]["clusters"].update(
        {
            "p/l/number": {**good, "name": 12345},
            "p/l/escape": {**good, "name": "../../x"},
            "p/l/nul": {**good, "name": "nul\u0000x"},
            "p/l/partial": {"name": "partial"},
            "p/l/pools": {**good, "name": "pools", "nodePools": {"a": 1}},
            "p/l/network": {**good, "name": "network", "network": None},
            "p/l/scalar": 7,
        }
    )
    data["compute"]["firewalls"] = {"p/bad": {"name": ["x"], "_project": PROJECT}}
    store.write_json(slow.layout.gcp, data)
    with caplog.at_level(logging.WARNING, logger="meshwright.sandbox.gcp.models"):
        again = World(slow.layout.root, latency=SLOW).start()
    try:
        status, listed = call(again, "GET", f"/v1/projects/{PROJECT}/locations/-/clusters")
        assert (status, [c["name"] for c in listed["clusters"]]) == (200, ["kept"])
        assert call(again, "GET", FIREWALLS)[0] == 200
        skipped = sorted(r.getMessage().split(" in gcp.json")[0] for r in caplog.records)
        assert skipped == [
            "skipped Compute firewall rule 'p/bad'",
            "skipped GKE cluster 'p/l/escape'",
            "skipped GKE cluster 'p/l/network'",
            "skipped GKE cluster 'p/l/nul'",
            "skipped GKE cluster 'p/l/number'",
            "skipped GKE cluster 'p/l/partial'",
            "skipped GKE cluster 'p/l/pools'",
            "skipped GKE cluster 'p/l/scalar'",
        ]
    finally:
        again.stop()


def test_an_unreadable_state_file_is_kept_aside_and_the_sandbox_starts(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    (root / "gcp.json").write_bytes(b"\x00{not json")
    w = World(root, latency=SLOW).start()
    try:
        assert call(w, "GET", CLUSTERS) == (200, {"clusters": []})
        assert [p.read_bytes() for p in root.glob("gcp.json.unreadable-*")] == [b"\x00{not json"]
    finally:
        w.stop()


# -- bodies (finding 9) ----------------------------------------------------------------------------


def raw_post(path: str, headers: str, body: bytes) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode() + body


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "12, 13", ""])
def test_a_bad_content_length_is_400_and_the_request_does_not_run(slow: World, length: str) -> None:
    body = json.dumps(cluster_body()).encode()
    answer = send_bytes(
        slow.server.port if slow.server else 0, raw_post(CLUSTERS, f"Content-Length: {length}\r\n", body)
    )
    assert statuses(answer)[0] == 400
    assert stored_names(slow) == []


def test_a_body_without_content_length_is_not_read_as_a_request_body(slow: World) -> None:
    body = json.dumps(cluster_body()).encode()
    answer = send_bytes(slow.server.port if slow.server else 0, raw_post(CLUSTERS, "", body))
    assert statuses(answer)
    assert all(s == 400 for s in statuses(answer))
    assert stored_names(slow) == []


def test_a_chunked_body_is_read(slow: World) -> None:
    body = json.dumps(cluster_body("chunky")).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    answer = send_bytes(
        slow.server.port if slow.server else 0, raw_post(CLUSTERS, "Transfer-Encoding: chunked\r\n", chunked)
    )
    assert statuses(answer) == [200]
    assert stored_names(slow) == ["chunky"]


@pytest.mark.parametrize(
    "raw",
    [
        b"[1]",
        b'"abc"',
        b'{"cluster": "abc"}',
        b"[" * 100_000,
        b"{",
        b"\xff\xfe",
        b"null",
        b"12",
        b'{"cluster": []}',
    ],
)
def test_a_body_that_is_not_a_create_request_is_400(slow: World, raw: bytes) -> None:
    status, answer = call(slow, "POST", CLUSTERS, raw=raw)
    assert (status, answer["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert stored_names(slow) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"initialNodeCount": "abc", "nodePools": None},
        {"initialNodeCount": True, "nodePools": None},
        {"nodePools": "x"},
        {"nodePools": [1]},
        {"nodePools": [{"name": "p", "initialNodeCount": {}}]},
        {"nodePools": [{"name": "Bad Pool", "initialNodeCount": 1}]},
        {"nodePools": [{"name": f"p{i}", "initialNodeCount": 1} for i in range(16)]},
        {"nodeConfig": []},
        {"nodeConfig": {"tags": "x"}},
        {"nodeConfig": {"diskSizeGb": "big"}},
        {"nodeConfig": {"labels": {"a": 1}}},
        {"nodeConfig": {"labels": {"UPPER": "v"}}},
        {"nodeConfig": {"tags": ["Bad Tag"]}},
        {"nodeConfig": {"tags": [f"t{i}" for i in range(65)]}},
        {"nodeConfig": {"diskSizeGb": 5}},
        {"nodeConfig": {"machineType": "m" * 101}},
        {"workloadIdentityConfig": {"workloadPool": "another-project.svc.id.goog"}},
        {"resourceLabels": []},
        {"resourceLabels": {"a": 1}},
        {"resourceLabels": {"Bad Key": "v"}},
        {"resourceLabels": {f"k{i}": "v" for i in range(65)}},
        {"ipAllocationPolicy": "x"},
        {"ipAllocationPolicy": {"clusterIpv4CidrBlock": 5}},
        {"ipAllocationPolicy": {"clusterIpv4CidrBlock": "/abc"}},
        {"ipAllocationPolicy": {"servicesIpv4CidrBlock": "10.0.0.1/8"}},
        {"releaseChannel": {"channel": "FAST"}},
        {"releaseChannel": {"channel": 99}},
        {"description": 7},
        {"description": "d" * 5_000_000},
        {"network": ["x"]},
        {"workloadIdentityConfig": "x"},
    ],
)
def test_wrong_field_types_in_a_create_are_400(slow: World, fields: dict[str, Any]) -> None:
    status, answer = call(slow, "POST", CLUSTERS, cluster_body("typed", **fields))
    assert (status, answer["error"]["status"]) == (400, "INVALID_ARGUMENT"), answer
    assert stored_names(slow) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"priority": "abc"},
        {"priority": 70000},
        {"allowed": "tcp"},
        {"allowed": [{"IPProtocol": 6.5}]},
        {"sourceRanges": "10.0.0.0/8"},
        {"targetTags": [1]},
        {"direction": 1},
        {"name": 5},
    ],
)
def test_wrong_field_types_in_a_firewall_are_400(slow: World, fields: dict[str, Any]) -> None:
    status, answer = call(
        slow, "POST", FIREWALLS, {"name": "fw", "network": "global/networks/default", **fields}
    )
    assert status == 400, answer
    assert slow.compute.firewalls == {}


def test_an_oversized_body_is_413_and_not_stored(slow: World) -> None:
    huge = cluster_body("huge", description="d" * (GOOGLE_MAX_BODY + 1))
    status, answer = call(slow, "POST", CLUSTERS, huge)
    assert (status, answer["error"]["message"]) == (413, PAYLOAD_TOO_LARGE.format(limit=GOOGLE_MAX_BODY))
    assert answer["error"]["status"] == "INVALID_ARGUMENT"
    assert stored_names(slow) == []
    assert call(slow, "GET", CLUSTERS) == (200, {"clusters": []})


# -- connections (finding 10) ----------------------------------------------------------------------


def echo(r: Request) -> Response:
    return Response(200, {"path": r.path, "size": len(r.body)})


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server(0, echo, name="test", idle_timeout=0.3, max_connections=4).start()
    yield s
    s.stop()


def test_the_listen_backlog_takes_a_burst_of_clients(server: Server) -> None:
    def one(i: int) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.request("GET", f"/{i}")
            return conn.getresponse().status
        finally:
            conn.close()

    assert server.request_queue_size >= 128
    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        answers = list(pool.map(one, range(200)))
    assert set(answers) <= {200, 503}
    assert answers.count(200) >= 4


def test_an_idle_connection_is_closed(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        assert sock.recv(1) == b""  # closed by the server, not by our 5 s timeout


def test_over_the_connection_limit_a_client_hears_503(tmp_path: Path) -> None:
    s = Server(0, echo, name="test", max_connections=2).start()
    held = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(2)]
    try:
        # The server accepts in connection order: both held ones take the slots before the third.
        answer = send_bytes(s.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert statuses(answer) == [503]
    finally:
        for sock in held:
            sock.close()
        s.stop()


def test_a_handler_that_raises_still_answers_500() -> None:
    def broken(r: Request) -> Response:
        raise KeyError("bug")

    s = Server(0, broken, name="test").start()
    try:
        assert statuses(send_bytes(s.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")) == [500]
    finally:
        s.stop()


def test_a_stream_whose_client_left_is_closed() -> None:
    closed = threading.Event()

    def idle_stream() -> Iterator[bytes]:
        try:
            while True:
                time.sleep(0.02)
                yield b""
        finally:
            closed.set()

    s = Server(0, lambda r: Response(200, stream=idle_stream()), name="test").start()
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
            sock.sendall(b"GET /watch HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(12) == b"HTTP/1.1 200"
        assert closed.wait(5)
    finally:
        s.stop()


# -- identity (finding 11) -------------------------------------------------------------------------


def test_same_named_clusters_of_two_projects_both_show_in_status(world: World) -> None:
    for project in ("demo-project", "other-project"):
        assert (
            call(world, "POST", f"/v1/projects/{project}/locations/{ZONE}/clusters", cluster_body())[0] == 200
        )
    wait_for(lambda: len(world.status()["clusters"]) == 2, "two clusters served")
    clusters = world.status()["clusters"]
    assert [(c["project"], c["location"], c["name"]) for c in clusters] == [
        ("demo-project", ZONE, "central"),
        ("other-project", ZONE, "central"),
    ]
    assert len({c["id"] for c in clusters}) == len({c["url"] for c in clusters}) == 2


@pytest.mark.parametrize(
    "rules",
    [
        b"- api: gke\n  status: 500\n  path: '('\n",
        b"[" * 100_000,
        b"- api: gke\n  status: [1]\n",
        b"\x00\xff",
    ],
)
def test_bad_fault_rules_on_the_admin_endpoint_are_400(slow: World, rules: bytes) -> None:
    status, answer = call(slow, "PUT", "/_sandbox/faults", raw=rules)
    assert status == 400
    assert answer["error"].startswith("invalid fault rules")
    assert slow.faults.describe() == []


@pytest.mark.parametrize(
    "expression", ["name eq (", "name eq (a+)+$", "name ne ([a-z]*)*x", "name = " + "x" * 5000, "nothing"]
)
def test_a_hostile_list_filter_is_400(slow: World, expression: str) -> None:
    query = urllib.parse.urlencode({"filter": expression})
    status, answer = call(slow, "GET", f"{FIREWALLS}?{query}")
    assert (status, answer["error"]["code"]) == (400, 400)
    assert "filter" in answer["error"]["message"]


def test_a_taken_port_moves_the_listener_and_any_other_error_does_not(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        w = World(tmp_path / "state", latency=SLOW).start(port, or_any_port=True)
        try:
            assert w.server is not None
            assert w.server.port != port
            assert call(w, "GET", CLUSTERS)[0] == 200
        finally:
            w.stop()
        other = World(tmp_path / "other", latency=SLOW)
        with pytest.raises(OSError, match="Address already in use"):
            other.start(port)
        other.fleet.close()


def test_the_real_client_hears_the_payload_limit(slow: World) -> None:
    too_big = container_v1.Cluster(name="huge", description="d" * (GOOGLE_MAX_BODY + 1), initial_node_count=1)
    with pytest.raises(gx.GoogleAPICallError, match="Request payload size exceeds the limit") as caught:
        gke_client(slow).create_cluster(parent=f"projects/{PROJECT}/locations/{ZONE}", cluster=too_big)
    assert caught.value.code == 413
    assert stored_names(slow) == []


def test_only_the_newest_finished_operations_are_kept(slow: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "KEPT_OPERATIONS", 3)
    for i in range(5):
        assert (
            call(slow, "POST", FIREWALLS, {"name": f"fw{i}", "network": "global/networks/default"})[0] == 200
        )
        assert call(slow, "POST", CLUSTERS, cluster_body(f"c{i}"))[0] == 200
    kept = [op["targetLink"].rsplit("/", 1)[-1] for op in slow.compute.list_operations(PROJECT)["items"]]
    assert sorted(kept) == ["fw2", "fw3", "fw4"]
    assert len(slow.gke.operations) == 5  # none finished: a running operation is never forgotten


@pytest.mark.parametrize(
    "body",
    [
        b"Content-Length: 11\r\n\r\n" + b"x" * 11,
        b"Transfer-Encoding: chunked\r\n\r\n6\r\nxxxxxx\r\n6\r\nxxxxxx\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",
    ],
)
def test_the_body_limit_is_a_server_parameter_and_covers_chunked_bodies(body: bytes) -> None:
    s = Server(0, echo, name="test", max_body=10).start()
    try:
        answer = send_bytes(s.port, b"POST / HTTP/1.1\r\nHost: x\r\n" + body)
        assert statuses(answer) == [413 if b"zz" not in body else 400]
    finally:
        s.stop()
