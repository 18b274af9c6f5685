"""The traffic check waits for the mesh to converge, then counts (issue 19's flake: endpoints of remote
clusters still arriving while every counted request had to succeed).

The ingress here is the sandbox's own data plane (meshwright.sandbox.mesh.serve.Traffic) behind a
loopback HTTP listener, with istiod's view of the remotes arriving late: until `converge()` the
primary has synced none of its remotes, as right after the remote secrets went in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prefect.logging import disable_run_logger

from meshwright.sandbox.mesh.serve import Traffic
from meshwright.spec import MeshSpec
from meshwright.traffic import REVIEWS_PATH, Reply, check_traffic, unanswered
from tasks.verify import await_traffic, send_traffic
from tests.dataplane.meshes import healthy, primary_remote


@dataclass
class SlowIngress:
    """A loopback ingress whose primary learns its remotes' endpoints only when told to."""

    spec: MeshSpec
    port: int = 0
    converged: bool = False

    def converge(self) -> None:
        self.converged = True


@pytest.fixture
def ingress() -> Iterator[SlowIngress]:
    spec = primary_remote()
    synced, address = healthy(spec)
    unsynced = replace(synced, synced={p: set() for p in synced.synced})
    slow = SlowIngress(spec)
    traffic = Traffic(lambda: synced if slow.converged else unsynced, sleep=lambda s: None)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body, _ = traffic.request(address, 80, self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    slow.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with disable_run_logger():
        yield slow
    server.shutdown()
    server.server_close()


def test_counting_before_the_mesh_converged_reports_workloads_that_never_answered(
    ingress: SlowIngress,
) -> None:
    replies = send_traffic.fn("127.0.0.1", requests=10, port=ingress.port)
    problems = check_traffic(ingress.spec, "127.0.0.1", replies, []).problems
    assert any("reviews-v3 on west never answered" in p for p in problems)


def test_traffic_waits_until_every_placed_workload_answered_then_counts_all_good(
    ingress: SlowIngress,
) -> None:
    timer = threading.Timer(0.5, ingress.converge)
    timer.start()
    missing = await_traffic.fn(ingress.spec, "127.0.0.1", within=10.0, port=ingress.port)
    timer.join()
    assert missing == []
    replies = send_traffic.fn("127.0.0.1", requests=10, port=ingress.port)
    assert check_traffic(ingress.spec, "127.0.0.1", replies, []).problems == []


def test_a_mesh_that_never_converges_names_what_never_answered_within_the_deadline(
    ingress: SlowIngress,
) -> None:
    assert await_traffic.fn(ingress.spec, "127.0.0.1", within=0.5, port=ingress.port) == [
        "reviews-v3 on west",
        "details-v1",
    ]


def reply(cluster: str, version: str, *, ratings_error: str | None = None) -> Reply:
    return Reply(path=REVIEWS_PATH, status=200, cluster=cluster, version=version, ratings_error=ratings_error)


def test_unanswered_names_reviews_versions_details_and_ratings_until_seen() -> None:
    spec = primary_remote()
    assert unanswered(spec, []) == [
        "reviews-v1 on central",
        "reviews-v2 on central",
        "reviews-v3 on west",
        "details-v1",
        "ratings-v1",
    ]
    unrated = "Ratings service is currently unavailable"
    seen = [reply("central", "v1"), reply("central", "v2", ratings_error=unrated)]
    seen.append(reply("west", "v3", ratings_error=unrated))
    page = Reply(path="/productpage", status=200, details=True)
    assert unanswered(spec, seen) == ["details-v1", "ratings-v1"]
    assert unanswered(spec, [*seen, page]) == ["ratings-v1"]
    assert unanswered(spec, [*seen, page, reply("west", "v3")]) == []
